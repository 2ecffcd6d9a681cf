package kroute

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/feltnet/felt/netns/netnstest"
)

// inNetns runs fn, on the test goroutine, in a throwaway namespace with a
// veth "u0" up at 192.0.2.1/24 and 2001:db8::1/64 (no DAD) and default
// routes via .254 and 2001:db8::fe, passing u0's index.
func inNetns(t *testing.T, fn func(link int)) {
	t.Helper()
	netnstest.Enter(t)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "u0", "type", "veth", "peer", "name", "u1"},
		{"link", "set", "u1", "up"},
		{"addr", "add", "192.0.2.1/24", "dev", "u0"},
		{"link", "set", "u0", "up"},
		{"route", "add", "default", "via", "192.0.2.254"},
		{"addr", "add", "2001:db8::1/64", "dev", "u0", "nodad"},
		{"-6", "route", "add", "default", "via", "2001:db8::fe"},
	} {
		netnstest.Output(t, "ip", args...)
	}
	l, err := netlink.LinkByName("u0")
	if err != nil {
		t.Fatal(err)
	}
	fn(l.Attrs().Index)
}

// show lists the namespace's routes of family ("-4" or "-6") as ip shows them.
func show(t *testing.T, family string) string {
	t.Helper()
	return netnstest.Output(t, "ip", family, "route", "show")
}

func TestAddDelAsFlanneldHostGW(t *testing.T) {
	inNetns(t, func(link int) {
		r := Route{Dst: netip.MustParsePrefix("10.5.2.0/24"), Gw: netip.MustParseAddr("192.0.2.3"), Link: link}
		if err := Add(r); err != nil {
			t.Fatalf("%v", err)
		}
		if err := Add(r); err != nil { // equal route present: kept, no error
			t.Fatalf("second Add: %v", err)
		}
		// The route as `ip route` shows flanneld's: via, dev, no proto/scope/metric.
		if got := show(t, "-4"); !strings.Contains(got, "10.5.2.0/24 via 192.0.2.3 dev u0 \n") {
			t.Fatalf("route table:\n%s", got)
		}
		// A route to the same subnet via another gateway is replaced.
		other := r
		other.Gw = netip.MustParseAddr("192.0.2.4")
		if err := Add(other); err != nil {
			t.Fatalf("%v", err)
		}
		if got := show(t, "-4"); strings.Contains(got, "192.0.2.3") || !strings.Contains(got, "10.5.2.0/24 via 192.0.2.4 dev u0") {
			t.Fatalf("after Add via another gateway:\n%s", got)
		}
		if err := Del(other); err != nil {
			t.Fatalf("%v", err)
		}
		if err := Del(other); err != nil {
			t.Fatalf("Del of a route already gone: %v", err)
		}
		if got := show(t, "-4"); strings.Contains(got, "10.5.2.0") {
			t.Fatalf("route left after Del:\n%s", got)
		}
		if err := Add(Route{Dst: netip.MustParsePrefix("10.5.2.1/24"), Gw: r.Gw}); err == nil || !strings.Contains(err.Error(), "Dst 10.5.2.1/24") {
			t.Fatalf("unmasked Dst: %v", err)
		}
	})
}

func TestOnLink(t *testing.T) {
	inNetns(t, func(int) {
		for ip, want := range map[string]bool{"192.0.2.77": true, "198.51.100.1": false} {
			got, err := OnLink(netip.MustParseAddr(ip))
			if err != nil || got != want {
				t.Errorf("OnLink(%s) = %v, %v; want %v", ip, got, err, want)
			}
		}
	})
}

func TestKeeperCheckRestores(t *testing.T) {
	inNetns(t, func(link int) {
		var restored []Route
		k := &Keeper{OnRestore: func(r Route) { restored = append(restored, r) }}
		a := Route{Dst: netip.MustParsePrefix("10.5.2.0/24"), Gw: netip.MustParseAddr("192.0.2.3"), Link: link}
		b := Route{Dst: netip.MustParsePrefix("10.5.3.0/24"), Gw: netip.MustParseAddr("192.0.2.4"), Link: link}
		for _, r := range []Route{a, b} {
			if err := k.Set(r); err != nil {
				t.Fatalf("%v", err)
			}
		}
		netnstest.Output(t, "ip", "route", "del", "10.5.3.0/24")
		got, err := k.Check()
		if err != nil || len(got) != 1 || got[0] != b || len(restored) != 1 {
			t.Fatalf("Check = %v, %v (OnRestore saw %v); want [%v]", got, err, restored, b)
		}
		if s := show(t, "-4"); !strings.Contains(s, "10.5.3.0/24 via 192.0.2.4 dev u0") {
			t.Fatalf("not restored:\n%s", s)
		}
		// Set with a new gateway moves the route; Remove deletes it.
		b2 := b
		b2.Gw = netip.MustParseAddr("192.0.2.9")
		if err := k.Set(b2); err != nil {
			t.Fatalf("%v", err)
		}
		if s := show(t, "-4"); strings.Contains(s, "192.0.2.4") || !strings.Contains(s, "via 192.0.2.9") {
			t.Fatalf("after Set with a new gateway:\n%s", s)
		}
		if err := k.Remove(a.Dst); err != nil {
			t.Fatalf("%v", err)
		}
		if got, err := k.Check(); err != nil || len(got) != 0 {
			t.Fatalf("Check after Remove = %v, %v", got, err)
		}
		if s := show(t, "-4"); strings.Contains(s, "10.5.2.0") {
			t.Fatalf("removed route back:\n%s", s)
		}
		if err := k.Clear(); err != nil || len(k.Routes()) != 0 {
			t.Fatalf("Clear: %v, %v", err, k.Routes())
		}
	})
}

func TestKeeperReplace(t *testing.T) {
	inNetns(t, func(link int) {
		k := &Keeper{Replace: true}
		r := Route{Dst: netip.MustParsePrefix("10.5.2.0/24"), Gw: netip.MustParseAddr("192.0.2.3")}
		// A route to the subnet through another device (felt's TUN, say) is replaced.
		netnstest.Output(t, "ip", "route", "add", "10.5.2.0/24", "via", "192.0.2.8")
		if err := k.Set(r); err != nil {
			t.Fatalf("%v", err)
		}
		if s := show(t, "-4"); !strings.Contains(s, "10.5.2.0/24 via 192.0.2.3 dev u0") || strings.Contains(s, "192.0.2.8") {
			t.Fatalf("after Replace:\n%s", s)
		}
		if missing, err := Missing([]Route{r}); err != nil || len(missing) != 0 {
			t.Fatalf("Missing = %v, %v (Link 0 matches any device)", missing, err)
		}
	})
}

// TestIPv6Routes: host-gw's IPv6 route <IPv6Subnet> via <PublicIPv6> dev
// <iface> is added, found by Missing, restored by the keeper after a
// delete by hand, and deleted; OnLink answers for IPv6 as for IPv4.
func TestIPv6Routes(t *testing.T) {
	inNetns(t, func(link int) {
		r := Route{Dst: netip.MustParsePrefix("fd10:5:0:2::/64"), Gw: netip.MustParseAddr("2001:db8::3"), Link: link}
		r4 := Route{Dst: netip.MustParsePrefix("10.5.2.0/24"), Gw: netip.MustParseAddr("192.0.2.3"), Link: link}
		k := &Keeper{}
		if err := k.Set(r); err != nil {
			t.Fatalf("%v", err)
		}
		if err := k.Set(r4); err != nil {
			t.Fatalf("%v", err)
		}
		if got := show(t, "-6"); !strings.Contains(got, "fd10:5:0:2::/64 via 2001:db8::3 dev u0") {
			t.Fatalf("no IPv6 route after Set:\n%s", got)
		}
		if m, err := Missing([]Route{r, r4}); err != nil || len(m) != 0 {
			t.Fatalf("Missing = %v, %v; want none", m, err)
		}
		netnstest.Output(t, "ip", "-6", "route", "del", "fd10:5:0:2::/64")
		restored, err := k.Check()
		if err != nil || len(restored) != 1 || restored[0] != r {
			t.Fatalf("Check = %v, %v; want [%v]", restored, err, r)
		}
		if got := show(t, "-6"); !strings.Contains(got, "fd10:5:0:2::/64 via 2001:db8::3 dev u0") {
			t.Fatalf("IPv6 route not restored:\n%s", got)
		}
		if err := k.Remove(r.Dst); err != nil {
			t.Fatalf("%v", err)
		}
		if got := show(t, "-6"); strings.Contains(got, "fd10:5:0:2::") {
			t.Fatalf("IPv6 route left after Remove:\n%s", got)
		}
		on, err := OnLink(netip.MustParseAddr("2001:db8::3"))
		if err != nil || !on {
			t.Fatalf("OnLink(2001:db8::3) = %v, %v; want true", on, err)
		}
		on, err = OnLink(netip.MustParseAddr("2001:db9::3"))
		if err != nil || on {
			t.Fatalf("OnLink(2001:db9::3) = %v, %v; want false (via the default gateway)", on, err)
		}
		for _, bad := range []Route{
			{Dst: netip.MustParsePrefix("fd10::/64"), Gw: netip.MustParseAddr("192.0.2.3")},
			{Dst: netip.MustParsePrefix("10.5.0.0/24"), Gw: netip.MustParseAddr("2001:db8::3")},
			{Dst: netip.MustParsePrefix("fd10::/64"), Gw: netip.MustParseAddr("::")},
		} {
			if err := Add(bad); err == nil {
				t.Fatalf("Add(%v) accepted a route mixing families or without a gateway", bad)
			}
		}
	})
}
