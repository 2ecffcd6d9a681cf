// Package kroute programs IPv4 and IPv6 routes in the kernel's main table the way
// flanneld's route-based backends do: host-gw's add (a route to the same
// destination through another gateway is deleted first), vxlan
// DirectRouting's replace, the on-link test that decides DirectRouting, and
// the periodic check that puts back a route deleted by hand.
//
// It touches the routing table of the calling thread's network namespace;
// nothing here runs on the packet path.
package kroute

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is one IPv4 or IPv6 route in the main table (Dst and Gw of one
// family): Dst via Gw, out of the link
// with index Link. Link 0 leaves the device to the kernel (it resolves Gw),
// as flanneld's DirectRouting route `<subnet> via <PublicIP>` does. Protocol
// (boot), scope (universe) and metric (0) are the kernel's defaults, as in
// flanneld's netlink calls.
type Route struct {
	Dst  netip.Prefix
	Gw   netip.Addr
	Link int
}

func (r Route) String() string {
	if r.Link == 0 {
		return fmt.Sprintf("%s via %s", r.Dst, r.Gw)
	}
	return fmt.Sprintf("%s via %s dev #%d", r.Dst, r.Gw, r.Link)
}

func (r Route) validate() error {
	if !r.Dst.IsValid() || r.Dst.Addr().Is4In6() || r.Dst.Addr().Zone() != "" || r.Dst.Masked() != r.Dst {
		return fmt.Errorf("kroute: route Dst %s: must be a masked IPv4 or IPv6 prefix", r.Dst)
	}
	if !r.Gw.IsValid() || r.Gw.Is4() != r.Dst.Addr().Is4() || r.Gw.Is4In6() || r.Gw.Zone() != "" ||
		r.Gw.IsUnspecified() || r.Gw.IsMulticast() {
		return fmt.Errorf("kroute: route to %s: Gw %s: must be a unicast address of the same family", r.Dst, r.Gw)
	}
	return nil
}

// family is r's netlink address family.
func (r Route) family() int { return familyOf(r.Dst.Addr()) }

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// addrOf converts a kernel address of r's family; ok false otherwise.
func addrOf(ip net.IP, v4 bool) (netip.Addr, bool) {
	if v4 {
		ip = ip.To4()
	} else if len(ip) != net.IPv6len {
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(ip)
}

func (r Route) netlink() *netlink.Route {
	return &netlink.Route{
		Dst:       ipNet(r.Dst),
		Gw:        r.Gw.AsSlice(),
		LinkIndex: r.Link,
	}
}

// matches reports whether the kernel route k is r: same destination and
// gateway, and the same link unless r leaves the link to the kernel.
// flanneld's routeEqual compares the same three fields.
func (r Route) matches(k netlink.Route) bool {
	if k.Dst == nil || len(k.MultiPath) > 0 {
		return false
	}
	v4 := r.Dst.Addr().Is4()
	ones, bits := k.Dst.Mask.Size()
	dst, ok := addrOf(k.Dst.IP, v4)
	if !ok || bits != r.Dst.Addr().BitLen() || netip.PrefixFrom(dst, ones) != r.Dst {
		return false
	}
	gw, ok := addrOf(k.Gw, v4)
	return ok && gw == r.Gw && (r.Link == 0 || k.LinkIndex == r.Link)
}

// routesTo lists the main table's routes whose destination is exactly dst.
func routesTo(dst netip.Prefix) ([]netlink.Route, error) {
	filter := &netlink.Route{Dst: ipNet(dst)}
	rs, err := netlink.RouteListFiltered(familyOf(dst.Addr()), filter, netlink.RT_FILTER_DST)
	if err != nil {
		return nil, fmt.Errorf("kroute: list routes to %s: %w", dst, err)
	}
	return rs, nil
}

// Add installs r as flanneld's host-gw does (routeAdd): if the main table
// has a route to r.Dst through another gateway or link, that route is
// deleted first; if it has r already, nothing changes; else r is added.
func Add(r Route) error {
	if err := r.validate(); err != nil {
		return err
	}
	rs, err := routesTo(r.Dst)
	if err != nil {
		return err
	}
	for _, k := range rs {
		if r.matches(k) {
			return nil
		}
	}
	if len(rs) > 0 {
		if err := netlink.RouteDel(&rs[0]); err != nil && !gone(err) {
			return fmt.Errorf("kroute: delete the stale route to %s via %s: %w", r.Dst, rs[0].Gw, err)
		}
	}
	if err := netlink.RouteAdd(r.netlink()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("kroute: add %s: %w", r, err)
	}
	return nil
}

// Replace installs r with one RTM_NEWROUTE (create|replace), as flanneld's
// vxlan backend installs a DirectRouting route.
func Replace(r Route) error {
	if err := r.validate(); err != nil {
		return err
	}
	if err := netlink.RouteReplace(r.netlink()); err != nil {
		return fmt.Errorf("kroute: replace %s: %w", r, err)
	}
	return nil
}

// Del deletes r; a route already gone is not an error.
func Del(r Route) error {
	if err := r.validate(); err != nil {
		return err
	}
	if err := netlink.RouteDel(r.netlink()); err != nil && !gone(err) {
		return fmt.Errorf("kroute: delete %s: %w", r, err)
	}
	return nil
}

func gone(err error) bool { return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) }

// Missing returns the routes of want that the main table lacks, in want's
// order, from one dump of the table (flanneld's checkSubnetExistInRoutes).
func Missing(want []Route) ([]Route, error) {
	if len(want) == 0 {
		return nil, nil
	}
	have := map[int][]netlink.Route{} // one dump per family present in want
	var out []Route
	for _, r := range want {
		f := r.family()
		if _, ok := have[f]; !ok {
			rs, err := netlink.RouteList(nil, f)
			if err != nil {
				return nil, fmt.Errorf("kroute: list routes: %w", err)
			}
			have[f] = rs
		}
		found := false
		for _, k := range have[f] {
			if r.matches(k) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, r)
		}
	}
	return out, nil
}

// OnLink is flanneld's DirectRouting test (ip.DirectRouting): the kernel's
// route to ip is a single route without a gateway, i.e. ip is on a
// directly connected network.
func OnLink(ip netip.Addr) (bool, error) {
	rs, err := netlink.RouteGet(ip.AsSlice())
	if err != nil {
		return false, fmt.Errorf("kroute: look up the route to %s: %w", ip, err)
	}
	return len(rs) == 1 && rs[0].Gw == nil, nil
}
