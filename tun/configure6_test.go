package tun

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// upTUN6 creates the TUN name, sets it up and gives it addr (without
// duplicate address detection); it skips the test where a TUN takes no
// IPv6 address.
func upTUN6(t *testing.T, name string, addr netip.Prefix) netlink.Link {
	t.Helper()
	createTUN(t, name, 0)
	link := mustLink(t, name)
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Skipf("no IPv6 on a TUN here: %v", err)
	}
	return link
}

// One felt0 carries both families: the IPv4 /32 and the IPv6 /128 of the
// lease, the routes of both pools, the IPv6 one with the IPv6 underlay's MTU;
// a stale IPv6 address of the pool goes, idempotently.
func TestConfigureDualStack(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("6")
	link := upTUN6(t, name, mustPrefix("fd00:5:0:7::/128"))
	c := NetConfig{Addr: mustPrefix("10.5.3.0/32"), MTU: 1450, Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")},
		Network: mustPrefix("10.5.0.0/16"), Addr6: mustPrefix("fd00:5:0:3::/128"), Network6: mustPrefix("fd00:5::/48"),
		Routes6: []netip.Prefix{mustPrefix("fd00:5::/48")}, RouteMTU6: 1430}
	for round := 1; round <= 2; round++ {
		if skipped, err := Configure(name, c); err != nil || len(skipped) != 0 {
			t.Fatalf("round %d: Configure = %q, %v", round, skipped, err)
		}
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	var v6 []string
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			v6 = append(v6, a.IPNet.String())
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("%s is tentative: DAD was not skipped", a.IPNet)
			}
		}
	}
	if len(v6) != 1 || v6[0] != "fd00:5:0:3::/128" {
		t.Errorf("IPv6 addresses %v, want only fd00:5:0:3::/128", v6)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(mustPrefix("fd00:5::/48"))},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST)
	if err != nil || len(routes) != 1 || routes[0].MTU != 1430 {
		t.Errorf("route fd00:5::/48: %+v %v, want one with mtu 1430", routes, err)
	}
	if _, err := Configure(name, NetConfig{Addr6: mustPrefix("10.5.3.0/32")}); err == nil {
		t.Error("an IPv4 Addr6 was accepted")
	}
	if _, err := Configure(name, NetConfig{Routes6: []netip.Prefix{mustPrefix("fd00:5::/48")}, RouteMTU6: 1000}); err == nil {
		t.Error("RouteMTU6 1000 (< 1280) was accepted")
	}
}

// TestConfigureExclusive6: felt0 is felt's alone on the IPv6 side too. A
// dual-stack run under one IPv6 pool, then one under another, then an
// IPv4-only run: each leaves only its own IPv6 address and routes (none for
// the IPv4-only run), whatever pool the earlier ones used, while link-local
// addresses stay.
func TestConfigureExclusive6(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("x6")
	link := upTUN6(t, name, mustPrefix("fe80::7/64"))
	state := func() (addrs, routes []string) {
		t.Helper()
		as, err := netlink.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			// The kernel may add a link-local address of its own.
			if !a.IP.IsLinkLocalUnicast() || a.IPNet.String() == "fe80::7/64" {
				addrs = append(addrs, a.IPNet.String())
			}
		}
		rs, err := netlink.RouteList(link, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Protocol != unix.RTPROT_KERNEL {
				routes = append(routes, r.Dst.String())
			}
		}
		return addrs, routes
	}
	v4 := NetConfig{Addr: mustPrefix("10.5.3.0/32"), Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")},
		Network: mustPrefix("10.5.0.0/16"), Exclusive: true}
	dual := func(pool, addr string) NetConfig {
		c := v4
		c.Addr6, c.Network6, c.Routes6 = mustPrefix(addr), mustPrefix(pool), []netip.Prefix{mustPrefix(pool)}
		return c
	}
	for _, tc := range []struct {
		c      NetConfig
		addrs  string
		routes string
	}{
		{dual("fd00:5::/48", "fd00:5:0:3::/128"), "[fd00:5:0:3::/128 fe80::7/64]", "[fd00:5::/48]"},
		{dual("fd00:6::/48", "fd00:6:0:9::/128"), "[fd00:6:0:9::/128 fe80::7/64]", "[fd00:6::/48]"},
		{v4, "[fe80::7/64]", "[]"},
	} {
		if _, err := Configure(name, tc.c); err != nil {
			t.Fatal(err)
		}
		addrs, routes := state()
		slices.Sort(addrs)
		if got := fmt.Sprint(addrs); got != tc.addrs {
			t.Errorf("after %s: IPv6 addresses %s, want %s", tc.c.Addr6, got, tc.addrs)
		}
		if got := fmt.Sprint(routes); got != tc.routes {
			t.Errorf("after %s: IPv6 routes %s, want %s", tc.c.Addr6, got, tc.routes)
		}
	}
}
