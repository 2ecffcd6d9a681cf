package netns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// AddContainer adds a "container" to the host: a namespace h.Name+"-"+name
// with a veth (eth0 inside, "v"+name in the host) onto bridge in the host,
// address addr (IPv4, or IPv6 for an IPv6-only lab) and, if gw is valid, a default route via gw. The bridge is
// created if missing; if gw is inside addr's network and the bridge lacks
// it, gw is put on the bridge, as a CNI bridge plugin does. Lab.Close
// removes it.
func (h *Host) AddContainer(ctx context.Context, name, bridge string, addr netip.Prefix, gw netip.Addr) (*Host, error) {
	if !nameRE.MatchString(name) || len(name) > 14 {
		return nil, fmt.Errorf("netns: container name %q: must be 1 to 14 lower-case letters and digits, starting with a letter", name)
	}
	if bridge == "" || len(bridge) > 15 || strings.ContainsAny(bridge, "/: ") {
		return nil, fmt.Errorf("netns: bridge name %q: must be 1 to 15 characters without '/', ':' or spaces", bridge)
	}
	if !addr.IsValid() || addr.Addr().Is4In6() || addr.Addr().Zone() != "" {
		return nil, fmt.Errorf("netns: container address %s: must be an IPv4 or IPv6 prefix such as 10.5.3.2/24 or fd00:5::2/64", addr)
	}
	l := h.lab
	c := &Host{Name: h.Name + "-" + name, Addr: addr.Addr(), Iface: underlayIface, lab: l}
	hostSide := "v" + name
	if err := l.addNamespace(ctx, c.Name); err != nil {
		return nil, err
	}
	if err := h.ensureBridge(ctx, bridge, addr, gw); err != nil {
		return nil, err
	}
	// Created in the host, peer born in the container; deleting the
	// container's namespace deletes the pair.
	if err := run(ctx, "ip", "-n", h.Name, "link", "add", hostSide, "type", "veth",
		"peer", "name", c.Iface, "netns", c.Name); err != nil {
		return nil, err
	}
	if err := run(ctx, "ip", "-n", h.Name, "link", "set", hostSide, "master", bridge, "up"); err != nil {
		return nil, err
	}
	if err := run(ctx, "ip", append([]string{"-n", c.Name, "addr", "add", addr.String(), "dev", c.Iface}, nodad(addr)...)...); err != nil {
		return nil, err
	}
	if err := run(ctx, "ip", "-n", c.Name, "link", "set", c.Iface, "up"); err != nil {
		return nil, err
	}
	if gw.IsValid() {
		if err := run(ctx, "ip", "-n", c.Name, "route", "add", "default", "via", gw.String()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (h *Host) ensureBridge(ctx context.Context, bridge string, addr netip.Prefix, gw netip.Addr) error {
	if err := run(ctx, "ip", "-n", h.Name, "link", "show", bridge); err != nil {
		if err := run(ctx, "ip", "-n", h.Name, "link", "add", bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	if gw.IsValid() && addr.Masked().Contains(gw) {
		have, err := output(ctx, "ip", "-n", h.Name, "-o", "addr", "show", "dev", bridge)
		if err != nil {
			return err
		}
		if !strings.Contains(have, " "+gw.String()+"/") {
			gwp := netip.PrefixFrom(gw, addr.Bits()).String()
			if err := run(ctx, "ip", append([]string{"-n", h.Name, "addr", "add", gwp, "dev", bridge}, nodad(addr)...)...); err != nil {
				return err
			}
		}
	}
	return run(ctx, "ip", "-n", h.Name, "link", "set", bridge, "up")
}

// nodad skips IPv6 duplicate address detection, so a lab address is usable
// at once rather than tentative for a second or two.
func nodad(p netip.Prefix) []string {
	if p.Addr().Is6() {
		return []string{"nodad"}
	}
	return nil
}
