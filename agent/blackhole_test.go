package agent

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns/netnstest"
)

// TestBlackholeFollowsLease (real routes, in a throwaway namespace), for
// each family: the blackhole route of --ip-blackhole-route follows the
// lease. At start the blackhole a previous run left for its subnet
// (subnet.env's) goes; after a re-acquired lease for another subnet the old
// subnet (free now for another node) is no longer blackholed; another route
// inside the old subnet is left alone.
func TestBlackholeFollowsLease(t *testing.T) {
	for _, tc := range []struct {
		name              string
		prev, a, b, inner string // the previous run's subnet, the lease's, the re-acquired one, a route inside a
	}{
		{"IPv4", "10.5.9.0/24", "10.5.1.0/24", "10.5.2.0/24", "10.5.1.0/25"},
		{"IPv6", "fd00:5:0:9::/64", "fd00:5:0:1::/64", "fd00:5:0:2::/64", "fd00:5:0:1::/65"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, a, b := netip.MustParsePrefix(tc.prev), netip.MustParsePrefix(tc.a), netip.MustParsePrefix(tc.b)
			v6 := a.Addr().Is6()
			netnstest.Enter(t)
			blackholeFollowsLease(t, v6, prev, a, b, tc.inner)
		})
	}
}

func blackholeFollowsLease(t *testing.T, v6 bool, prev, a, b netip.Prefix, inner string) {
	t.Helper()
	netnstest.Output(t, "ip", "link", "set", "lo", "up")
	if err := addBlackhole(prev); err != nil { // the previous run's
		t.Fatal(err)
	}
	own := func(p netip.Prefix) lease.Lease {
		if v6 {
			return lease.Lease{IPv6Subnet: p}
		}
		return lease.Lease{Subnet: p}
	}
	n := &node{cfg: Config{BlackholeRoute: true, Resync: time.Hour}, log: zap.NewNop(),
		netCfg: &lease.Config{EnableIPv4: !v6, EnableIPv6: v6}, st: &state{own: own(a)}, prev: own(prev)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the resync goroutine ends at once (it would run outside the namespace)
	g := newGroup(ctx)
	n.startBlackhole(g)
	g.wait()
	bh, family := n.bh, netlink.FAMILY_V4
	if v6 {
		bh, family = n.bh6, netlink.FAMILY_V6
	}
	if bh == nil || (n.bh != nil && n.bh6 != nil) {
		t.Fatalf("blackholes kept: IPv4 %v, IPv6 %v; want only this family's", n.bh != nil, n.bh6 != nil)
	}
	check := func(when string, want ...netip.Prefix) {
		t.Helper()
		rs, err := netlink.RouteListFiltered(family, &netlink.Route{Type: unix.RTN_BLACKHOLE}, netlink.RT_FILTER_TYPE)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.Dst.String())
		}
		var ws []string
		for _, w := range want {
			ws = append(ws, w.String())
		}
		if strings.Join(got, " ") != strings.Join(ws, " ") {
			t.Errorf("%s: blackhole routes %v, want %v", when, got, ws)
		}
	}
	check("at start, subnet.env naming "+prev.String(), a)

	// The keeper re-acquires b (reacquired moves the blackhole); the old
	// subnet a also has a unicast route now, which must stay.
	netnstest.Output(t, "ip", "route", "add", "unreachable", inner)
	n.st.own = own(b)
	bh.ensure(b)
	check("after the lease moved to "+b.String(), b)
	bh.ensure(b) // a resync tick
	check("after a resync", b)
	fam := map[bool]string{false: "-4", true: "-6"}[v6]
	if out := netnstest.Output(t, "ip", fam, "route", "show", inner); !strings.Contains(out, "unreachable") {
		t.Errorf("the unreachable route was removed with the blackhole: %q", out)
	}
}
