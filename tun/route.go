package tun

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddRoute routes prefix into the link name (`ip route replace PREFIX dev
// NAME`). A route that is already there is fine.
func AddRoute(name string, prefix netip.Prefix) error {
	link, err := routeLink(name, prefix)
	if err != nil {
		return err
	}
	skip, err := addRoute(link, prefix)
	if err != nil {
		return err
	}
	if skip != "" {
		return fmt.Errorf("tun: %s: %w", skip, unix.EPERM)
	}
	return nil
}

// DelRoute removes the route for prefix through name. A route that is
// already gone is fine.
func DelRoute(name string, prefix netip.Prefix) error {
	link, err := routeLink(name, prefix)
	if err != nil {
		return err
	}
	err = netlink.RouteDel(linkRoute(link, prefix))
	if err == nil || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if isPerm(err) {
		return fmt.Errorf("tun: delete route %s dev %s: %s: %w", prefix, name,
			noCap(fmt.Sprintf("ip route del %s dev %s", prefix, name)), err)
	}
	return fmt.Errorf("tun: delete route %s dev %s: %w", prefix, name, err)
}

func routeLink(name string, prefix netip.Prefix) (netlink.Link, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !prefix.IsValid() || prefix != prefix.Masked() {
		return nil, fmt.Errorf("tun: route prefix %s: must be a valid prefix without host bits", prefix)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("tun: route via %s: %w", name, err)
	}
	return link, nil
}

func linkRoute(link netlink.Link, prefix netip.Prefix) *netlink.Route {
	return &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(prefix), Scope: netlink.SCOPE_LINK}
}

// addRoute returns a skip sentence instead of an error when it lacks
// CAP_NET_ADMIN and the route is not already there.
func addRoute(link netlink.Link, prefix netip.Prefix) (string, error) {
	name := link.Attrs().Name
	r := linkRoute(link, prefix)
	err := netlink.RouteReplace(r)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return "", nil
	case isPerm(err):
		if routeExists(r) {
			return "", nil
		}
		return fmt.Sprintf("route %s not added: %s", prefix, noCap(fmt.Sprintf("ip route replace %s dev %s", prefix, name))), nil
	}
	return "", fmt.Errorf("tun: add route %s dev %s: %w", prefix, name, err)
}

func routeExists(r *netlink.Route) bool {
	got, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Dst: r.Dst, LinkIndex: r.LinkIndex},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_OIF)
	return err == nil && len(got) > 0
}
