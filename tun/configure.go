package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Configure sets the MTU and address of the TUN name, removes its other
// addresses inside the flannel Network, brings it up and adds the routes
// (replace semantics). It works on any link, TUN or not.
//
// Without CAP_NET_ADMIN (a persistent TUN an admin made for a non-root user)
// it does what it can, returns each step it had to skip as a sentence with the
// command an admin should run, and err nil. A step whose result is already in
// place is not reported.
func Configure(name string, c NetConfig) (skipped []string, err error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("tun: configure %s: %w", name, err)
	}
	stale, err := removeStale(link, c)
	if err != nil {
		return nil, err
	}
	skipped = append(skipped, stale...)
	if c.Exclusive && !c.Addr.IsValid() && c.v6() { // IPv6-only (configure6.go)
		if stale, err = clear4(link); err != nil {
			return skipped, err
		}
		skipped = append(skipped, stale...)
	}
	for _, step := range []func(netlink.Link, NetConfig) (string, error){setMTU, addAddr, setUp} {
		skip, err := step(link, c)
		if err != nil {
			return skipped, err
		}
		if skip != "" {
			skipped = append(skipped, skip)
		}
	}
	for _, r := range c.Routes {
		skip, err := addRoute(link, r)
		if err != nil {
			return skipped, err
		}
		if skip != "" {
			skipped = append(skipped, skip)
		}
	}
	if c.v6() || c.Exclusive {
		skip6, err := configure6(link, c)
		skipped = append(skipped, skip6...)
		if err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

func setMTU(link netlink.Link, c NetConfig) (string, error) {
	name, have := link.Attrs().Name, link.Attrs().MTU
	if c.MTU == 0 || c.MTU == have {
		return "", nil
	}
	err := netlink.LinkSetMTU(link, c.MTU)
	switch {
	case err == nil:
		return "", nil
	case isPerm(err):
		return fmt.Sprintf("mtu %d not set (%s has %d): %s", c.MTU, name, have,
			noCap(fmt.Sprintf("ip link set dev %s mtu %d", name, c.MTU))), nil
	}
	return "", fmt.Errorf("tun: set MTU %d on %s: %w", c.MTU, name, err)
}

// removeStale deletes addresses inside the Network other than c.Addr, so a
// node that changed subnet does not keep answering for the old one.
func removeStale(link netlink.Link, c NetConfig) ([]string, error) {
	if !c.Addr.IsValid() {
		return nil, nil
	}
	skipped, err := delAddrs(link, "stale", func(p netip.Prefix) bool { return p != c.Addr && c.stale(p.Addr()) })
	if err != nil {
		return nil, err
	}
	if c.Exclusive {
		family := netlink.FAMILY_V4
		if c.Addr.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		skip, err := removeStaleRoutes(link, family, c.Routes)
		if err != nil {
			return nil, err
		}
		skipped = append(skipped, skip...)
	}
	return skipped, nil
}

// removeStaleRoutes deletes the routes of family through link that are not
// in keep (the kernel's own, for its addresses, and link-local ones stay).
func removeStaleRoutes(link netlink.Link, family int, keep []netip.Prefix) ([]string, error) {
	routes, err := netlink.RouteList(link, family)
	if err != nil {
		return nil, fmt.Errorf("tun: list routes of %s: %w", link.Attrs().Name, err)
	}
	var skipped []string
	for i := range routes {
		r := &routes[i]
		dst, ok := prefixOf(r.Dst)
		if !ok || r.Protocol == unix.RTPROT_KERNEL || slices.Contains(keep, dst) || dst.Addr().IsLinkLocalUnicast() {
			continue
		}
		err := netlink.RouteDel(r)
		switch {
		case err == nil, errors.Is(err, unix.ESRCH):
		case isPerm(err):
			skipped = append(skipped, fmt.Sprintf("route %s not removed: %s", dst,
				noCap(fmt.Sprintf("ip route del %s dev %s", dst, link.Attrs().Name))))
		default:
			return nil, fmt.Errorf("tun: remove stale route %s from %s: %w", dst, link.Attrs().Name, err)
		}
	}
	return skipped, nil
}

func addAddr(link netlink.Link, c NetConfig) (string, error) {
	if !c.Addr.IsValid() {
		return "", nil
	}
	addrs, err := linkAddrs(link)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if a.prefix == c.Addr {
			return "", nil
		}
	}
	name := link.Attrs().Name
	err = netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(c.Addr)})
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return "", nil
	case isPerm(err):
		return fmt.Sprintf("address %s not set: %s", c.Addr, noCap(fmt.Sprintf("ip addr add %s dev %s", c.Addr, name))), nil
	}
	return "", fmt.Errorf("tun: add address %s to %s: %w", c.Addr, name, err)
}

func setUp(link netlink.Link, _ NetConfig) (string, error) {
	name := link.Attrs().Name
	if link.Attrs().Flags&net.FlagUp != 0 {
		return "", nil
	}
	err := netlink.LinkSetUp(link)
	switch {
	case err == nil:
		return "", nil
	case isPerm(err):
		return fmt.Sprintf("link %s not brought up: %s", name, noCap(fmt.Sprintf("ip link set dev %s up", name))), nil
	}
	return "", fmt.Errorf("tun: bring %s up: %w", name, err)
}

type linkAddr struct {
	prefix netip.Prefix
	nl     *netlink.Addr
}

func linkAddrs(link netlink.Link) ([]linkAddr, error) {
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("tun: list addresses of %s: %w", link.Attrs().Name, err)
	}
	out := make([]linkAddr, 0, len(list))
	for i := range list {
		p, ok := prefixOf(list[i].IPNet)
		if ok {
			out = append(out, linkAddr{prefix: p, nl: &list[i]})
		}
	}
	return out, nil
}

// delAddrs removes from link each address whose prefix drop picks, and
// returns delAddr's sentences for those it may not remove; on an error, those
// so far. what is as for delAddr.
func delAddrs(link netlink.Link, what string, drop func(netip.Prefix) bool) ([]string, error) {
	addrs, err := linkAddrs(link)
	if err != nil {
		return nil, err
	}
	var skipped []string
	for _, a := range addrs {
		if !drop(a.prefix) {
			continue
		}
		skip, err := delAddr(link, a, what)
		if err != nil {
			return skipped, err
		}
		if skip != "" {
			skipped = append(skipped, skip)
		}
	}
	return skipped, nil
}

// delAddr removes a from link. Without CAP_NET_ADMIN it returns, instead
// of an error, the sentence saying what an admin should run; what names the
// kind of address in an error ("stale", "IPv4").
func delAddr(link netlink.Link, a linkAddr, what string) (skip string, err error) {
	name := link.Attrs().Name
	err = netlink.AddrDel(link, a.nl)
	switch {
	case err == nil, errors.Is(err, unix.EADDRNOTAVAIL):
		return "", nil
	case isPerm(err):
		return fmt.Sprintf("address %s not removed: %s", a.prefix, noCap(fmt.Sprintf("ip addr del %s dev %s", a.prefix, name))), nil
	}
	return "", fmt.Errorf("tun: remove %s address %s from %s: %w", what, a.prefix, name, err)
}
