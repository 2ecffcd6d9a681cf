//go:build linux

package encap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// familyDual tells putSockaddr that the socket is AF_INET6 without
// IPV6_V6ONLY: IPv4 destinations go as IPv4-mapped IPv6 addresses.
const familyDual = -unix.AF_INET6

// ListenDualStack opens one UDP socket on [::]:port that carries both
// families (IPV6_V6ONLY off): what a dual-stack vxlan node needs, since
// flanneld's peers send IPv4-inner frames between PublicIP addresses (its
// flannel.<VNI> device) and IPv6-inner frames between PublicIPv6 addresses
// (flannel-v6.<VNI>), both to the one vxlan port. Like the two kernel
// devices' sockets, it is wildcard-bound. Peers are given and reported as
// plain IPv4 or IPv6 addresses; the mapping is the Conn's business. IPv4
// traffic keeps the IPv4 socket's path MTU rule (IP_PMTUDISC_OMIT).
func ListenDualStack(port uint16, o Options) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	laddr := netip.AddrPortFrom(netip.IPv6Unspecified(), port)
	// "udp" with a wildcard address is Go's dual-stack socket.
	pc, err := listenUDP("udp", laddr, o.ReusePort)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("encap: listen on %s: udp port %d is already in use (another felt, flanneld or a kernel vxlan device?): %w", laddr, port, err)
		}
		return nil, fmt.Errorf("encap: listen on %s: %w", laddr, err)
	}
	c := &Conn{pc: pc, family: unix.AF_INET6, dual: true, batch: o.BatchSize, log: log}
	if err := c.setup(o); err != nil {
		pc.Close()
		return nil, fmt.Errorf("encap: listen on %s: %w", laddr, err)
	}
	var v6only int
	if err := c.raw.Control(func(fd uintptr) {
		v6only, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	}); err != nil || v6only != 0 {
		pc.Close()
		return nil, fmt.Errorf("encap: listen on %s: not a dual-stack socket (IPV6_V6ONLY=%d, %v): is IPv6 disabled on this host?", laddr, v6only, err)
	}
	c.local = netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(pc.LocalAddr().(*net.UDPAddr).Port))
	c.rd.init(c)
	c.wr.init(c)
	return c, nil
}

// nameFamily is the family putSockaddr encodes destinations for.
func (c *Conn) nameFamily() int {
	if c.dual {
		return familyDual
	}
	return c.family
}

// routeFamily is the family a datagram to dst travels in.
func (c *Conn) routeFamily(dst netip.AddrPort) int {
	if c.dual && dst.Addr().Unmap().Is4() {
		return unix.AF_INET
	}
	return c.family
}
