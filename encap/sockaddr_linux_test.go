//go:build linux

package encap

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// Each socket family takes only the addresses it can reach: an IPv6-only
// socket no IPv4 or IPv4-mapped address, a dual-stack one IPv4 peers at
// their mapped address.
func TestPutSockaddr(t *testing.T) {
	v4, v6 := netip.MustParseAddrPort("192.0.2.1:8472"), netip.MustParseAddrPort("[fd00::1]:8472")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), 8472)
	for _, tc := range []struct {
		family int
		a      netip.AddrPort
		want   uint32
		back   netip.AddrPort // what getSockaddr reads back
	}{
		{unix.AF_INET, v4, unix.SizeofSockaddrInet4, v4},
		{unix.AF_INET, mapped, unix.SizeofSockaddrInet4, v4},
		{unix.AF_INET, v6, 0, netip.AddrPort{}},
		{unix.AF_INET6, v6, unix.SizeofSockaddrInet6, v6},
		{unix.AF_INET6, v4, 0, netip.AddrPort{}},
		{unix.AF_INET6, mapped, 0, netip.AddrPort{}},
		{unix.AF_INET6, netip.AddrPort{}, 0, netip.AddrPort{}},
		{familyDual, v4, unix.SizeofSockaddrInet6, v4},
		{familyDual, mapped, unix.SizeofSockaddrInet6, v4},
		{familyDual, v6, unix.SizeofSockaddrInet6, v6},
		{familyDual, netip.AddrPort{}, 0, netip.AddrPort{}},
	} {
		var sa sockaddr
		got := putSockaddr(&sa, tc.family, tc.a)
		if got != tc.want {
			t.Errorf("family %d, %s: length %d, want %d", tc.family, tc.a, got, tc.want)
			continue
		}
		if got != 0 {
			if back := getSockaddr(&sa); back != tc.back {
				t.Errorf("family %d, %s: reads back as %s, want %s", tc.family, tc.a, back, tc.back)
			}
		}
	}
}
