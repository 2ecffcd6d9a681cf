package tun

import (
	"fmt"
	"net/netip"
)

// NetConfig is what Configure puts on the TUN.
type NetConfig struct {
	// Addr is the device address: <subnet>.0/32 as flanneld sets it.
	// Zero leaves the addresses alone.
	Addr netip.Prefix
	// MTU of the device; 0 keeps the current one.
	MTU int
	// Routes sent into the TUN, e.g. the flannel Network.
	Routes []netip.Prefix
	// Network is the flannel Network: other addresses inside it are removed
	// from the device, as flanneld's EnsureV4AddressOnLink does. Zero means
	// "any of Routes".
	Network netip.Prefix
	// Exclusive says the device is felt's alone (felt0, which outlives a
	// felt process): every other address of Addr's family is removed, not
	// only those inside Network, and so is every route of that family
	// through the device that is not in Routes. The IPv6 side likewise:
	// every IPv6 address but Addr6 and link-local ones, every IPv6 route not
	// in Routes6 (all of them when the config has no IPv6 side). A previous
	// run under another Network, or a dual-stack one, leaves nothing behind
	// that would answer for it.
	Exclusive bool

	// The IPv6 side of a dual-stack or IPv6-only node (configure6.go): the
	// address (a /128 of the IPv6 lease, as flanneld's flannel-v6 device),
	// the routes through the device, their MTU (0: the device's), and the
	// IPv6 pool, whose other addresses on the device are stale.
	Addr6     netip.Prefix
	Routes6   []netip.Prefix
	RouteMTU6 int
	Network6  netip.Prefix
}

func (c NetConfig) check() error {
	if err := checkMTU("NetConfig.MTU", c.MTU); err != nil {
		return err
	}
	if c.Addr.IsValid() && c.Addr.Addr().Zone() != "" {
		return fmt.Errorf("tun: NetConfig.Addr %s: must not carry a zone", c.Addr)
	}
	for i, r := range c.Routes {
		if !r.IsValid() {
			return fmt.Errorf("tun: NetConfig.Routes[%d] %s: not a valid prefix", i, r)
		}
		if r != r.Masked() {
			return fmt.Errorf("tun: NetConfig.Routes[%d] %s: has host bits set; did you mean %s?", i, r, r.Masked())
		}
	}
	if err := c.check6(); err != nil {
		return err
	}
	if c.Network.IsValid() && c.Network != c.Network.Masked() {
		return fmt.Errorf("tun: NetConfig.Network %s: has host bits set; did you mean %s?", c.Network, c.Network.Masked())
	}
	return nil
}

// stale reports whether a, an address on the device other than Addr, must
// go: with Exclusive any address of Addr's family (but IPv6 link-local),
// otherwise one inside the space this configuration manages.
func (c NetConfig) stale(a netip.Addr) bool {
	if c.Exclusive {
		return a.Is4() == c.Addr.Addr().Is4() && !a.IsLinkLocalUnicast()
	}
	return c.owned(a)
}

// owned reports whether a is inside the space this configuration manages, so
// an address there other than Addr is stale and must go.
func (c NetConfig) owned(a netip.Addr) bool {
	if c.Network.IsValid() {
		return c.Network.Contains(a)
	}
	for _, r := range c.Routes {
		if r.Contains(a) {
			return true
		}
	}
	return false
}
