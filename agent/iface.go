package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"github.com/vishvananda/netlink"
)

// extIface is the external (underlay) interface as flanneld chooses it.
type extIface struct {
	Name  string
	Addr  netip.Addr // the interface's IPv4 address: the socket binds here for udp
	MTU   int
	Index int // host-gw routes name this link
}

// ifaceChoice is what selects the external interface: flanneld's --iface,
// --iface-regex, --iface-can-reach and --public-ip.
type ifaceChoice struct {
	names    []string // names or IPv4 addresses
	regexes  []string
	canReach string
	public   netip.Addr
}

func choiceOf(c Config) ifaceChoice {
	return ifaceChoice{names: c.Ifaces, regexes: c.IfaceRegex, canReach: c.IfaceCanReach, public: c.PublicIP}
}

// findExtIface picks the external interface in flanneld's order: each
// --iface (name or address), then each --iface-regex (matched against the
// interfaces' IPv4 addresses, then their names), then --iface-can-reach (the
// interface and source address `ip route get` gives). When none of these is
// given: the interface holding --public-ip, else the default route's.
func findExtIface(c ifaceChoice) (extIface, error) {
	if len(c.names) == 0 && len(c.regexes) == 0 && c.canReach == "" {
		if c.public.IsValid() {
			if e, err := ifaceByAddr(c.public); err == nil {
				return e, nil
			}
		}
		return defaultRouteIface()
	}
	for _, want := range c.names {
		if ip, err := netip.ParseAddr(want); err == nil {
			if e, err := ifaceByAddr(ip); err == nil {
				return e, nil
			}
			continue
		}
		if e, err := ifaceByName(want); err == nil {
			return e, nil
		}
	}
	for _, re := range c.regexes {
		if e, err := ifaceByRegex(re); err == nil {
			return e, nil
		}
	}
	if c.canReach != "" {
		if e, err := ifaceCanReach(c.canReach); err == nil {
			return e, nil
		}
	}
	var tried []string
	if len(c.names) > 0 {
		tried = append(tried, fmt.Sprintf("--iface %v", c.names))
	}
	if len(c.regexes) > 0 {
		tried = append(tried, fmt.Sprintf("--iface-regex %q", c.regexes))
	}
	if c.canReach != "" {
		tried = append(tried, fmt.Sprintf("--iface-can-reach %s", c.canReach))
	}
	return extIface{}, fmt.Errorf("%s: no interface on this host matches (see `ip -br addr`)", strings.Join(tried, ", "))
}

func defaultRouteIface() (extIface, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return extIface{}, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.LinkIndex > 0 {
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				continue
			}
			return ifaceByName(l.Attrs().Name)
		}
	}
	return extIface{}, errors.New("no default route: pass --iface NAME|IP, --iface-regex or --iface-can-reach (what reaches the other hosts)")
}

// ifaceByRegex is flanneld's --iface-regex: the first interface with an
// IPv4 address the expression matches (that address is used), else the
// first interface whose name it matches.
func ifaceByRegex(expr string) (extIface, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return extIface{}, fmt.Errorf("--iface-regex %q: %w", expr, err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return extIface{}, err
	}
	for _, ifc := range ifs {
		for _, ip := range ipv4Addrs(ifc) {
			if re.MatchString(ip.String()) {
				return extIface{Name: ifc.Name, Addr: ip, MTU: ifc.MTU, Index: ifc.Index}, nil
			}
		}
	}
	for _, ifc := range ifs {
		if re.MatchString(ifc.Name) {
			return ifaceByName(ifc.Name)
		}
	}
	return extIface{}, fmt.Errorf("--iface-regex %q matches no interface address or name", expr)
}

// ifaceCanReach is flanneld's --iface-can-reach: the route to ip decides the
// interface, and its preferred source the address.
func ifaceCanReach(s string) (extIface, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return extIface{}, fmt.Errorf("--iface-can-reach %q: not an IP address", s)
	}
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil {
		return extIface{}, fmt.Errorf("--iface-can-reach %s: no route: %w", ip, err)
	}
	for _, r := range routes {
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		e, err := ifaceByName(l.Attrs().Name)
		if err != nil {
			return extIface{}, err
		}
		if src, ok := netip.AddrFromSlice(r.Src.To4()); ok && src.IsValid() {
			e.Addr = src
		}
		return e, nil
	}
	return extIface{}, fmt.Errorf("--iface-can-reach %s: no route", ip)
}

func ipv4Addrs(ifc net.Interface) []netip.Addr {
	addrs, _ := ifc.Addrs()
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}

func ifaceByName(name string) (extIface, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return extIface{}, fmt.Errorf("interface %q: %w", name, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return extIface{}, fmt.Errorf("interface %q: list addresses: %w", name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && !ip.IsLinkLocalUnicast() {
			return extIface{Name: name, Addr: ip, MTU: l.Attrs().MTU, Index: l.Attrs().Index}, nil
		}
	}
	return extIface{}, fmt.Errorf("interface %q has no IPv4 address", name)
}

func ifaceByAddr(ip netip.Addr) (extIface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return extIface{}, err
	}
	for _, ifc := range ifs {
		for _, got := range ipv4Addrs(ifc) {
			if got == ip {
				return extIface{Name: ifc.Name, Addr: ip, MTU: ifc.MTU, Index: ifc.Index}, nil
			}
		}
	}
	return extIface{}, fmt.Errorf("no interface has address %s", ip)
}
