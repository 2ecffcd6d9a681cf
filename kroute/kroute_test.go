package kroute

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/feltnet/felt/netns"
)

// failed unwinds a test body that runs on Throwaway's thread, where
// t.Fatal's Goexit would leave Throwaway waiting forever.
type failed struct{}

// fatalf reports a failure and stops the body inNetns runs.
func fatalf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Errorf(format, args...)
	panic(failed{})
}

// inNetns runs fn in a throwaway namespace with a veth "u0" up at
// 192.0.2.1/24 and 2001:db8::1/64 (no DAD) and default routes via .254 and
// 2001:db8::fe, passing u0's index. fn
// must stop with fatalf, not t.Fatal.
func inNetns(t *testing.T, fn func(link int)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	err := netns.Throwaway(func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(failed); !ok {
					panic(r)
				}
			}
		}()
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
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				fatalf(t, "ip %v: %v: %s", args, err, out)
			}
		}
		l, err := netlink.LinkByName("u0")
		if err != nil {
			return err
		}
		fn(l.Attrs().Index)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func show(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-4", "route", "show").CombinedOutput()
	if err != nil {
		fatalf(t, "ip route: %v: %s", err, out)
	}
	return string(out)
}

func TestAddDelAsFlanneldHostGW(t *testing.T) {
	inNetns(t, func(link int) {
		r := Route{Dst: netip.MustParsePrefix("10.5.2.0/24"), Gw: netip.MustParseAddr("192.0.2.3"), Link: link}
		if err := Add(r); err != nil {
			fatalf(t, "%v", err)
		}
		if err := Add(r); err != nil { // equal route present: kept, no error
			fatalf(t, "second Add: %v", err)
		}
		// The route as `ip route` shows flanneld's: via, dev, no proto/scope/metric.
		if got := show(t); !strings.Contains(got, "10.5.2.0/24 via 192.0.2.3 dev u0 \n") {
			fatalf(t, "route table:\n%s", got)
		}
		// A route to the same subnet via another gateway is replaced.
		other := r
		other.Gw = netip.MustParseAddr("192.0.2.4")
		if err := Add(other); err != nil {
			fatalf(t, "%v", err)
		}
		if got := show(t); strings.Contains(got, "192.0.2.3") || !strings.Contains(got, "10.5.2.0/24 via 192.0.2.4 dev u0") {
			fatalf(t, "after Add via another gateway:\n%s", got)
		}
		if err := Del(other); err != nil {
			fatalf(t, "%v", err)
		}
		if err := Del(other); err != nil {
			fatalf(t, "Del of a route already gone: %v", err)
		}
		if got := show(t); strings.Contains(got, "10.5.2.0") {
			fatalf(t, "route left after Del:\n%s", got)
		}
		if err := Add(Route{Dst: netip.MustParsePrefix("10.5.2.1/24"), Gw: r.Gw}); err == nil || !strings.Contains(err.Error(), "Dst 10.5.2.1/24") {
			fatalf(t, "unmasked Dst: %v", err)
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
				fatalf(t, "%v", err)
			}
		}
		if out, err := exec.Command("ip", "route", "del", "10.5.3.0/24").CombinedOutput(); err != nil {
			fatalf(t, "%v: %s", err, out)
		}
		got, err := k.Check()
		if err != nil || len(got) != 1 || got[0] != b || len(restored) != 1 {
			fatalf(t, "Check = %v, %v (OnRestore saw %v); want [%v]", got, err, restored, b)
		}
		if s := show(t); !strings.Contains(s, "10.5.3.0/24 via 192.0.2.4 dev u0") {
			fatalf(t, "not restored:\n%s", s)
		}
		// Set with a new gateway moves the route; Remove deletes it.
		b2 := b
		b2.Gw = netip.MustParseAddr("192.0.2.9")
		if err := k.Set(b2); err != nil {
			fatalf(t, "%v", err)
		}
		if s := show(t); strings.Contains(s, "192.0.2.4") || !strings.Contains(s, "via 192.0.2.9") {
			fatalf(t, "after Set with a new gateway:\n%s", s)
		}
		if err := k.Remove(a.Dst); err != nil {
			fatalf(t, "%v", err)
		}
		if got, err := k.Check(); err != nil || len(got) != 0 {
			fatalf(t, "Check after Remove = %v, %v", got, err)
		}
		if s := show(t); strings.Contains(s, "10.5.2.0") {
			fatalf(t, "removed route back:\n%s", s)
		}
		if err := k.Clear(); err != nil || len(k.Routes()) != 0 {
			fatalf(t, "Clear: %v, %v", err, k.Routes())
		}
	})
}

func TestKeeperReplace(t *testing.T) {
	inNetns(t, func(link int) {
		k := &Keeper{Replace: true}
		r := Route{Dst: netip.MustParsePrefix("10.5.2.0/24"), Gw: netip.MustParseAddr("192.0.2.3")}
		// A route to the subnet through another device (felt's TUN, say) is replaced.
		if out, err := exec.Command("ip", "route", "add", "10.5.2.0/24", "via", "192.0.2.8").CombinedOutput(); err != nil {
			fatalf(t, "%v: %s", err, out)
		}
		if err := k.Set(r); err != nil {
			fatalf(t, "%v", err)
		}
		if s := show(t); !strings.Contains(s, "10.5.2.0/24 via 192.0.2.3 dev u0") || strings.Contains(s, "192.0.2.8") {
			fatalf(t, "after Replace:\n%s", s)
		}
		if missing, err := Missing([]Route{r}); err != nil || len(missing) != 0 {
			fatalf(t, "Missing = %v, %v (Link 0 matches any device)", missing, err)
		}
	})
}

func show6(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-6", "route", "show").CombinedOutput()
	if err != nil {
		fatalf(t, "ip -6 route: %v: %s", err, out)
	}
	return string(out)
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
			fatalf(t, "%v", err)
		}
		if err := k.Set(r4); err != nil {
			fatalf(t, "%v", err)
		}
		if got := show6(t); !strings.Contains(got, "fd10:5:0:2::/64 via 2001:db8::3 dev u0") {
			fatalf(t, "no IPv6 route after Set:\n%s", got)
		}
		if m, err := Missing([]Route{r, r4}); err != nil || len(m) != 0 {
			fatalf(t, "Missing = %v, %v; want none", m, err)
		}
		if out, err := exec.Command("ip", "-6", "route", "del", "fd10:5:0:2::/64").CombinedOutput(); err != nil {
			fatalf(t, "ip -6 route del: %v: %s", err, out)
		}
		restored, err := k.Check()
		if err != nil || len(restored) != 1 || restored[0] != r {
			fatalf(t, "Check = %v, %v; want [%v]", restored, err, r)
		}
		if got := show6(t); !strings.Contains(got, "fd10:5:0:2::/64 via 2001:db8::3 dev u0") {
			fatalf(t, "IPv6 route not restored:\n%s", got)
		}
		if err := k.Remove(r.Dst); err != nil {
			fatalf(t, "%v", err)
		}
		if got := show6(t); strings.Contains(got, "fd10:5:0:2::") {
			fatalf(t, "IPv6 route left after Remove:\n%s", got)
		}
		on, err := OnLink(netip.MustParseAddr("2001:db8::3"))
		if err != nil || !on {
			fatalf(t, "OnLink(2001:db8::3) = %v, %v; want true", on, err)
		}
		on, err = OnLink(netip.MustParseAddr("2001:db9::3"))
		if err != nil || on {
			fatalf(t, "OnLink(2001:db9::3) = %v, %v; want false (via the default gateway)", on, err)
		}
		for _, bad := range []Route{
			{Dst: netip.MustParsePrefix("fd10::/64"), Gw: netip.MustParseAddr("192.0.2.3")},
			{Dst: netip.MustParsePrefix("10.5.0.0/24"), Gw: netip.MustParseAddr("2001:db8::3")},
			{Dst: netip.MustParsePrefix("fd10::/64"), Gw: netip.MustParseAddr("::")},
		} {
			if err := Add(bad); err == nil {
				fatalf(t, "Add(%v) accepted a route mixing families or without a gateway", bad)
			}
		}
	})
}
