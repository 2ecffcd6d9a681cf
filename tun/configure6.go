package tun

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// configure6 gives the link its IPv6 side (NetConfig.Addr6, Routes6): the
// one address, without duplicate address detection (a TUN has no
// neighbours, and a tentative address could not be a source for a second),
// addresses of Network6 other than Addr6 removed (a re-acquired lease), or
// with Exclusive every IPv6 address but Addr6 and link-local ones and every
// IPv6 route not in Routes6 (so a dual-stack run leaves nothing on felt0 for
// an IPv4-only one), and the routes, each with RouteMTU6 when set (the IPv6
// underlay's larger overhead; the kernel then sends Packet Too Big for
// larger packets, as it does for flanneld's flannel-v6 device, whose MTU is
// that much smaller).
func configure6(link netlink.Link, c NetConfig) ([]string, error) {
	var skipped []string
	name := link.Attrs().Name
	if c.Addr6.IsValid() || c.Exclusive {
		have := false
		var err error
		skipped, err = delAddrs(link, "stale", func(p netip.Prefix) bool {
			if p == c.Addr6 {
				have = true
				return false
			}
			return c.stale6(p.Addr())
		})
		if err != nil {
			return skipped, err
		}
		if !have && c.Addr6.IsValid() {
			err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(c.Addr6), Flags: unix.IFA_F_NODAD})
			switch {
			case err == nil, errors.Is(err, unix.EEXIST):
			case isPerm(err):
				skipped = append(skipped, fmt.Sprintf("address %s not set: %s", c.Addr6,
					noCap(fmt.Sprintf("ip addr add %s dev %s nodad", c.Addr6, name))))
			default:
				return skipped, fmt.Errorf("tun: add address %s to %s: %w (is IPv6 disabled? net.ipv6.conf.%s.disable_ipv6)", c.Addr6, name, err, name)
			}
		}
	}
	if c.Exclusive {
		skip, err := removeStaleRoutes(link, netlink.FAMILY_V6, c.Routes6)
		if err != nil {
			return skipped, err
		}
		skipped = append(skipped, skip...)
	}
	for _, r := range c.Routes6 {
		route := linkRoute(link, r)
		route.MTU = c.RouteMTU6
		err := netlink.RouteReplace(route)
		switch {
		case err == nil, errors.Is(err, unix.EEXIST):
		case isPerm(err):
			if !routeExists(route) {
				cmd := fmt.Sprintf("ip route replace %s dev %s", r, name)
				if c.RouteMTU6 > 0 {
					cmd += fmt.Sprintf(" mtu %d", c.RouteMTU6)
				}
				skipped = append(skipped, fmt.Sprintf("route %s not added: %s", r, noCap(cmd)))
			}
		default:
			return skipped, fmt.Errorf("tun: add route %s dev %s: %w", r, name, err)
		}
	}
	return skipped, nil
}

// check6 checks the IPv6 fields of a NetConfig.
func (c NetConfig) check6() error {
	if c.Addr6.IsValid() && (!c.Addr6.Addr().Is6() || c.Addr6.Addr().Is4In6() || c.Addr6.Addr().Zone() != "") {
		return fmt.Errorf("tun: NetConfig.Addr6 %s: must be an IPv6 prefix without a zone", c.Addr6)
	}
	for i, r := range c.Routes6 {
		if !r.IsValid() || !r.Addr().Is6() || r != r.Masked() {
			return fmt.Errorf("tun: NetConfig.Routes6[%d] %s: must be an IPv6 prefix without host bits", i, r)
		}
	}
	if c.Network6.IsValid() && (!c.Network6.Addr().Is6() || c.Network6 != c.Network6.Masked()) {
		return fmt.Errorf("tun: NetConfig.Network6 %s: must be an IPv6 prefix without host bits", c.Network6)
	}
	if c.RouteMTU6 != 0 && (c.RouteMTU6 < 1280 || c.RouteMTU6 > 65535) {
		return fmt.Errorf("tun: NetConfig.RouteMTU6 %d: must be 0 or in 1280..65535 (IPv6's minimum link MTU)", c.RouteMTU6)
	}
	return nil
}

// stale6 reports whether the IPv6 address a on the device must go: with
// Exclusive any but link-local ones, else those inside Network6 (Addr6
// itself is kept by the caller).
func (c NetConfig) stale6(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() {
		return false
	}
	if c.Exclusive {
		return !a.IsLinkLocalUnicast()
	}
	return c.Network6.IsValid() && c.Network6.Contains(a)
}

// v6 reports whether the config has an IPv6 side.
func (c NetConfig) v6() bool { return c.Addr6.IsValid() || len(c.Routes6) > 0 }

// clear4 is the IPv4 side of an exclusive IPv6-only config (no Addr): every
// IPv4 address and route an earlier IPv4 or dual-stack run left on felt0
// goes, so the device answers for no IPv4 subnet.
func clear4(link netlink.Link) ([]string, error) {
	skipped, err := delAddrs(link, "IPv4", func(p netip.Prefix) bool { return p.Addr().Is4() })
	if err != nil {
		return skipped, err
	}
	skip, err := removeStaleRoutes(link, netlink.FAMILY_V4, nil)
	return append(skipped, skip...), err
}
