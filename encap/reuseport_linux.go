//go:build linux

package encap

import (
	"context"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Several Conns on one port: with Options.ReusePort each socket sets
// SO_REUSEPORT before it binds, so N Conns (one per queue of the agent)
// share the port and the kernel hands each arriving datagram to one of them
// by a hash of its 4-tuple (source address and port, destination address
// and port). felt and flanneld send from their fixed port, so all of one
// peer's datagrams carry one 4-tuple and land on one Conn, in order; peers
// spread over the Conns, one peer does not. (A reuseport BPF program that
// hashed the inner flow would spread one peer's flows, but UDP GRO trains
// mix inner flows and go to one socket whole, by their first datagram, so a
// flow could arrive on two sockets and be reordered: felt does not do it.)
// The kernel lets only sockets of one user join a port this way.

// listenUDP binds network laddr, with SO_REUSEPORT set first if reuse.
func listenUDP(network string, laddr netip.AddrPort, reuse bool) (*net.UDPConn, error) {
	if !reuse {
		return net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return &net.OpError{Op: "setsockopt", Net: network, Err: serr}
		}
		return nil
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}
