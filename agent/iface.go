package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// extIface is the external (underlay) interface as flanneld chooses it.
type extIface struct {
	Name  string
	Addr  netip.Addr // the interface's IPv4 address: the socket binds here for udp
	MTU   int
	Index int // host-gw routes name this link
}

// findExtIface picks the external interface: the first of ifaces (names or
// IPv4 addresses) that exists, else the interface of the default route, as
// flanneld does without --iface.
func findExtIface(ifaces []string) (extIface, error) {
	for _, want := range ifaces {
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
	if len(ifaces) > 0 {
		return extIface{}, fmt.Errorf("--iface %v: no such interface or address on this host (see `ip -br addr`)", ifaces)
	}
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
	return extIface{}, errors.New("no default route: pass --iface NAME|IP (the interface that reaches the other hosts)")
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
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if got, ok := netip.AddrFromSlice(n.IP.To4()); ok && got == ip {
					return extIface{Name: ifc.Name, Addr: ip, MTU: ifc.MTU, Index: ifc.Index}, nil
				}
			}
		}
	}
	return extIface{}, fmt.Errorf("no interface has address %s", ip)
}
