//go:build linux

package encap

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockaddr is scratch big enough for either family's raw socket address; an
// IPv4 address is written over its first 16 bytes.
type sockaddr = unix.RawSockaddrInet6

// putSockaddr encodes a for a socket of the given family into sa and returns
// the address length, or 0 if a cannot be reached from such a socket: the
// other family (felt's IPv6 sockets are IPv6-only, except a dual-stack one:
// familyDual) or an invalid address.
// Zones (link-local scope ids) are not carried.
func putSockaddr(sa *sockaddr, family int, a netip.AddrPort) uint32 {
	ip := a.Addr()
	dual := family == familyDual
	if dual {
		// A dual-stack socket reaches IPv4 peers at their mapped address.
		if ip.Is4() {
			ip = netip.AddrFrom16(ip.As16())
		}
		family = unix.AF_INET6
	}
	if family == unix.AF_INET {
		ip = ip.Unmap()
		if !ip.Is4() {
			return 0
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		putPort(&sa4.Port, a.Port())
		sa4.Addr = ip.As4()
		return unix.SizeofSockaddrInet4
	}
	// Only a dual-stack socket reaches an IPv4-mapped address.
	if !ip.Is6() || ip.Is4In6() && !dual {
		return 0
	}
	sa.Family = unix.AF_INET6
	putPort(&sa.Port, a.Port())
	sa.Flowinfo = 0
	sa.Addr = ip.As16()
	sa.Scope_id = 0
	return unix.SizeofSockaddrInet6
}

// getSockaddr decodes the sender address the kernel wrote into sa; IPv4
// peers seen through an IPv6 socket come back unmapped.
func getSockaddr(sa *sockaddr) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), getPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// The raw structs hold the port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
