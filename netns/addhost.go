package netns

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
)

const underlayIface = "eth0"

// AddHost adds a host to a Bridge lab: a namespace with a veth onto the
// bridge, its underlay address and loopback up. A host that fails half-way
// is left for Close.
func (l *Lab) AddHost(ctx context.Context) (*Host, error) {
	if l.cfg.Topology != Bridge {
		return nil, fmt.Errorf("netns: AddHost: a %v lab has a fixed set of hosts", l.cfg.Topology)
	}
	i, err := l.claimIndex()
	if err != nil {
		return nil, err
	}
	addr, err := hostAddr(l.cfg.Underlay, i)
	if err != nil {
		return nil, fmt.Errorf("netns: AddHost: %w", err)
	}
	h := &Host{Name: l.cfg.Name + "h" + strconv.Itoa(i), Addr: addr, Iface: underlayIface, lab: l}
	veth, mtu := l.cfg.Name+"v"+strconv.Itoa(i), strconv.Itoa(l.cfg.MTU)
	if err := l.addNamespace(ctx, h.Name); err != nil {
		return nil, err
	}
	// Both ends are born where they belong: no temporary names to collide.
	if err := l.addLink(ctx, veth, "link", "add", veth, "mtu", mtu, "type", "veth",
		"peer", "name", underlayIface, "mtu", mtu, "netns", h.Name); err != nil {
		return nil, err
	}
	if err := run(ctx, "ip", "link", "set", veth, "master", l.Bridge(), "up"); err != nil {
		return nil, err
	}
	if err := l.upHost(ctx, h); err != nil {
		return nil, err
	}
	if l.cfg.WireLike {
		if err := wireLike(ctx, nil, veth); err != nil {
			return nil, err
		}
	}
	l.addHostRecord(h)
	return h, nil
}

// buildPair makes two hosts joined by one veth.
func (l *Lab) buildPair(ctx context.Context) error {
	var hosts [2]*Host
	for i := range hosts {
		addr, err := hostAddr(l.cfg.Underlay, i)
		if err != nil {
			return err
		}
		hosts[i] = &Host{Name: l.cfg.Name + "h" + strconv.Itoa(i), Addr: addr, Iface: underlayIface, lab: l}
		if err := l.addNamespace(ctx, hosts[i].Name); err != nil {
			return err
		}
	}
	l.next = 2
	mtu := strconv.Itoa(l.cfg.MTU)
	if err := run(ctx, "ip", "-n", hosts[0].Name, "link", "add", underlayIface, "mtu", mtu, "type", "veth",
		"peer", "name", underlayIface, "mtu", mtu, "netns", hosts[1].Name); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := l.upHost(ctx, h); err != nil {
			return err
		}
		l.addHostRecord(h)
	}
	return nil
}

// upHost addresses the host's underlay interface, brings it up, and makes
// it wire-like if asked.
func (l *Lab) upHost(ctx context.Context, h *Host) error {
	p := netip.PrefixFrom(h.Addr, l.cfg.Underlay.Bits()).String()
	if err := run(ctx, "ip", "-n", h.Name, "addr", "add", p, "dev", h.Iface); err != nil {
		return err
	}
	if err := run(ctx, "ip", "-n", h.Name, "link", "set", h.Iface, "up"); err != nil {
		return err
	}
	if l.cfg.WireLike {
		return wireLike(ctx, h, h.Iface)
	}
	return nil
}

// wireLike sets performance.md's wire-like offloads on dev, inside h (or
// in the current namespace when h is nil): every frame crosses at MTU size
// and is coalesced again on receive, as on a real NIC.
func wireLike(ctx context.Context, h *Host, dev string) error {
	args := []string{"-K", dev, "tso", "off", "gso", "off", "tx-udp-segmentation", "off", "gro", "on"}
	if h == nil {
		return run(ctx, "ethtool", args...)
	}
	return run(ctx, "ip", append([]string{"netns", "exec", h.Name, "ethtool"}, args...)...)
}
