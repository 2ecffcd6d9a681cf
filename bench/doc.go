// Package bench measures felt (each backend mode a scenario: a row of
// scenarioTable) against the kernel's own VXLAN (configured as flanneld
// configures it), bare veth, Debian's wireguard-go and, given a flanneld
// binary, flanneld itself, on two hosts in network namespaces, in one run:
// TCP throughput (one and several streams), TCP request/response
// (bench/internal/rr), 64-byte UDP flooded and paced, ping RTT percentiles
// and CPU per GB moved.
// Every figure is also given as a ratio to a baseline on the same underlay
// (kernel-vxlan where the kernel has vxlan, bare otherwise), since only
// ratios measured in the same run mean anything on a shared machine.
//
// It drives the felt binary (`felt etcd`, `felt agent`), flanneld,
// wireguard-go, wg, iperf3, ping, ip and bridge from the outside, as an
// operator would, and writes the network configs straight into etcd (the
// agents judge them); of felt it imports only netns.
//
// Concurrency: Run is sequential. For each underlay it builds one lab, then
// for each repetition brings each scenario up, measures it, and takes it
// down again, rotating the scenario order between repetitions so that no
// scenario always runs first or last. Nothing is measured concurrently.
package bench
