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

// TestBlackholeFollowsLease (real routes, in a throwaway namespace): the
// blackhole route of --ip-blackhole-route follows the lease. At start the
// blackhole a previous run left for its subnet (subnet.env's) goes; after a
// re-acquired lease for another subnet the old subnet (free now for another
// node) is no longer blackholed; another route inside the old subnet is left
// alone.
func TestBlackholeFollowsLease(t *testing.T) {
	netnstest.Enter(t)
	netnstest.Output(t, "ip", "link", "set", "lo", "up")
	prev, a, b := netip.MustParsePrefix("10.5.9.0/24"), netip.MustParsePrefix("10.5.1.0/24"), netip.MustParsePrefix("10.5.2.0/24")
	if err := addBlackhole(prev); err != nil { // the previous run's
		t.Fatal(err)
	}
	n := &node{cfg: Config{BlackholeRoute: true, Resync: time.Hour}, log: zap.NewNop(),
		st: &state{own: lease.Lease{Subnet: a}}, prevSubnet: prev}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the resync goroutine ends at once (it would run outside the namespace)
	g := newGroup(ctx)
	n.startBlackhole(g)
	g.wait()
	check := func(when string, want ...netip.Prefix) {
		t.Helper()
		rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Type: unix.RTN_BLACKHOLE}, netlink.RT_FILTER_TYPE)
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
	netnstest.Output(t, "ip", "route", "add", "unreachable", "10.5.1.0/25")
	n.st.own = lease.Lease{Subnet: b}
	n.bh.ensure(b)
	check("after the lease moved to "+b.String(), b)
	n.bh.ensure(b) // a resync tick
	check("after a resync", b)
	if out := netnstest.Output(t, "ip", "route", "show", "10.5.1.0/25"); !strings.Contains(out, "unreachable") {
		t.Errorf("the unreachable route was removed with the blackhole: %q", out)
	}
}
