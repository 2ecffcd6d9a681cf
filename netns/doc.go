// Package netns builds small labs of hosts in network namespaces for felt's
// tests, benchmark and demo: hosts on an underlay bridge (or one veth between
// two hosts), processes started inside them, "containers" behind a bridge in
// a host, and cleanup that leaves nothing behind.
//
// It drives iproute2 (`ip`) and ethtool, as an admin would, so a failing
// step's error shows the command and its output. It works as root, or
// rootless inside a user namespace (see ReexecRootless).
package netns
