package tun

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
)

// An IPv6-only config on felt0 (exclusive, no Addr) removes the IPv4
// address and routes an earlier dual-stack run left, and keeps the IPv6 side.
func TestConfigureIPv6OnlyClearsIPv4(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("o")
	createTUN(t, name, 0)
	link := mustLink(t, name)
	dual := NetConfig{Addr: mustPrefix("10.5.3.0/32"), MTU: 1450, Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")},
		Network: mustPrefix("10.5.0.0/16"), Addr6: mustPrefix("fd00:5:0:3::/128"), Network6: mustPrefix("fd00:5::/48"),
		Routes6: []netip.Prefix{mustPrefix("fd00:5::/48")}, RouteMTU6: 1430, Exclusive: true}
	if _, err := Configure(name, dual); err != nil {
		t.Skipf("dual-stack TUN not configurable here: %v", err)
	}
	only6 := dual
	only6.Addr, only6.Routes, only6.Network = netip.Prefix{}, nil, netip.Prefix{}
	for round := 1; round <= 2; round++ {
		if skipped, err := Configure(name, only6); err != nil || len(skipped) != 0 {
			t.Fatalf("round %d: Configure = %q, %v", round, skipped, err)
		}
	}
	if a4, err := netlink.AddrList(link, netlink.FAMILY_V4); err != nil || len(a4) != 0 {
		t.Errorf("IPv4 addresses left: %v %v", a4, err)
	}
	if r4, err := netlink.RouteList(link, netlink.FAMILY_V4); err != nil || len(r4) != 0 {
		t.Errorf("IPv4 routes left: %v %v", r4, err)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(mustPrefix("fd00:5::/48"))},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST)
	if err != nil || len(routes) != 1 || routes[0].MTU != 1430 {
		t.Errorf("route fd00:5::/48: %+v %v, want one with mtu 1430", routes, err)
	}
}
