// Package router is felt's forwarding engine: an immutable peer table,
// published with an atomic swap, and the two run-to-completion packet loops
// between a TUN-like Device and a UDP-like Conn (see engine.go).
//
// router imports encap only. It declares the small Device, Conn and Framer
// interfaces it needs, so the agent wires tun/encap in and tests wire in the
// in-memory fakes of router/routertest.
package router
