package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

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
	if c.v6() {
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
	addrs, err := linkAddrs(link)
	if err != nil {
		return nil, err
	}
	name := link.Attrs().Name
	var skipped []string
	for _, a := range addrs {
		if a.prefix == c.Addr || !c.owned(a.prefix.Addr()) {
			continue
		}
		err := netlink.AddrDel(link, a.nl)
		switch {
		case err == nil, errors.Is(err, unix.EADDRNOTAVAIL):
		case isPerm(err):
			skipped = append(skipped, fmt.Sprintf("address %s not removed: %s", a.prefix,
				noCap(fmt.Sprintf("ip addr del %s dev %s", a.prefix, name))))
		default:
			return nil, fmt.Errorf("tun: remove stale address %s from %s: %w", a.prefix, name, err)
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
