package router

import (
	"fmt"
	"net/netip"
)

// locals are the engine's own subnets, one per family (zero: none). The
// loops take a snapshot per batch; Contains is what they ask of it.
type locals struct{ v4, v6 netip.Prefix }

// Contains reports whether a is in one of the own subnets (a prefix of the
// other family contains nothing of a's).
func (l locals) Contains(a netip.Addr) bool {
	return l.v4.Contains(a) || l.v6.Contains(a)
}

// SetLocal6 changes the engine's own IPv6 subnet (see SetLocal).
func (e *Engine) SetLocal6(local netip.Prefix) {
	l := *e.local.Load()
	l.v6 = local.Masked()
	e.local.Store(&l)
}

// validate6 checks the IPv6 half of a Config.
func (c *Config) validate6() error {
	if !c.IPv6Network.IsValid() {
		if c.Local6.IsValid() {
			return fmt.Errorf("router: config Local6 %s: needs IPv6Network", c.Local6)
		}
		return nil
	}
	switch {
	case !c.IPv6Network.Addr().Is6() || c.IPv6Network.Addr().Is4In6():
		return fmt.Errorf("router: config IPv6Network %s: must be an IPv6 prefix", c.IPv6Network)
	case c.IPv6SubnetLen < c.IPv6Network.Bits() || c.IPv6SubnetLen > 128:
		return fmt.Errorf("router: config IPv6SubnetLen %d: must lie between the IPv6Network's length %d and 128",
			c.IPv6SubnetLen, c.IPv6Network.Bits())
	case !c.Local6.IsValid() || !c.Local6.Addr().Is6():
		return fmt.Errorf("router: config Local6 %q: must be a valid IPv6 prefix with IPv6Network", c.Local6)
	}
	return nil
}
