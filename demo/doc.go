// Package demo builds flannel's classic tutorial on one machine: an etcd, N
// hosts each running `felt agent`, a docker0-like bridge per host addressed
// and sized from that host's subnet.env, two "containers" behind each bridge,
// and a check that every container reaches every container on another host.
//
// Hosts and containers are network namespaces (package netns); the agents are
// the real felt binary, each in its host's namespace; etcd is embedded in the
// demo process on the lab's gateway address. Everything is removed when Run
// returns, also when its context is cancelled (Ctrl-C) at any step.
package demo
