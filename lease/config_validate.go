package lease

import (
	"fmt"
	"net/netip"
)

// pool names the fields and limits of one address family's subnet pool,
// so that IPv4 and IPv6 share one set of rules (flanneld's CheckNetworkConfig).
type pool struct {
	network, subnetLen, min, max string // JSON field names
	is4                          bool
	maxLen                       int // longest subnet prefix
	smallest                     int // longest Network prefix when SubnetLen is derived
	wide                         int // a Network this wide or wider gets subnets of defaultLen
	defaultLen                   int // else Network's length + 2
}

var (
	pool4 = pool{"Network", "SubnetLen", "SubnetMin", "SubnetMax", true, 30, 28, 22, 24}
	pool6 = pool{"IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax", false, 126, 124, 62, 64}
)

// applyDefaults fills SubnetLen, SubnetMin and SubnetMax of both pools as
// flanneld does. It only errs where no default exists (a too small Network);
// everything else is left to Validate.
func (c *Config) applyDefaults() error {
	if err := pool4.defaults(c.Network, &c.SubnetLen, &c.SubnetMin, &c.SubnetMax); err != nil {
		return err
	}
	if !c.EnableIPv6 {
		return nil
	}
	return pool6.defaults(c.IPv6Network, &c.IPv6SubnetLen, &c.IPv6SubnetMin, &c.IPv6SubnetMax)
}

func (p pool) defaults(network netip.Prefix, subnetLen *int, lo, hi *netip.Addr) error {
	if !network.IsValid() || network.Addr().Is4() != p.is4 {
		return nil
	}
	if *subnetLen == 0 {
		switch {
		case network.Bits() > p.smallest:
			return fieldErr(p.network, network.String(), "too small: the prefix must be /%d or shorter", p.smallest)
		case network.Bits() <= p.wide:
			*subnetLen = p.defaultLen
		default:
			*subnetLen = network.Bits() + 2
		}
	}
	if *subnetLen < network.Bits()+2 || *subnetLen > p.maxLen {
		return nil // Validate says why
	}
	host := ones(network.Addr().BitLen() - *subnetLen)
	if !lo.IsValid() {
		second, _ := fromAddr(network.Masked().Addr()).add(host.add1())
		*lo = second.addr(p.is4)
	}
	if !hi.IsValid() {
		*hi = lastAddr(network.Masked()).sub(host).addr(p.is4)
	}
	return nil
}

// add1 returns u+1 (used for subnet sizes, which never overflow).
func (u u128) add1() u128 {
	s, _ := u.add(u128{lo: 1})
	return s
}

// Validate checks a config with its defaults applied: flanneld's rules,
// plus the ones felt adds (SubnetMin <= SubnetMax, a backend
// felt speaks, VNI and port ranges).
func (c *Config) Validate() error {
	if c == nil {
		return fmt.Errorf("config: nil config")
	}
	if !c.EnableIPv4 && !c.EnableIPv6 {
		return fieldErr("EnableIPv4", false, "at least one of EnableIPv4 and EnableIPv6 must be true")
	}
	if c.EnableIPv4 {
		if err := pool4.validate(c.Network, c.SubnetLen, c.SubnetMin, c.SubnetMax); err != nil {
			return err
		}
	}
	if c.EnableIPv6 {
		if err := pool6.validate(c.IPv6Network, c.IPv6SubnetLen, c.IPv6SubnetMin, c.IPv6SubnetMax); err != nil {
			return err
		}
	}
	return c.Backend.validate()
}

func (p pool) validate(network netip.Prefix, subnetLen int, lo, hi netip.Addr) error {
	fam := family(p.is4)
	if !network.IsValid() {
		return fieldErr(p.network, "", "required: the %s pool to lease subnets from, e.g. %q", fam, example(p.is4, true))
	}
	if network.Addr().Is4() != p.is4 || network.Addr().Is4In6() || network.Addr().Zone() != "" {
		return fieldErr(p.network, network.String(), "must be an %s prefix such as %s", fam, example(p.is4, true))
	}
	if network != network.Masked() {
		return fieldErr(p.network, network.String(), "host bits must be zero (%s)", network.Masked())
	}
	switch {
	case subnetLen < 0:
		return fieldErr(p.subnetLen, subnetLen, "must not be negative")
	case subnetLen == 0:
		return fieldErr(p.subnetLen, subnetLen, "must be set (ParseConfig derives it from %s)", p.network)
	case subnetLen > p.maxLen:
		return fieldErr(p.subnetLen, subnetLen, "must be at most %d", p.maxLen)
	case subnetLen < network.Bits()+2:
		return fieldErr(p.subnetLen, subnetLen, "must be at least %d (%s /%d + 2) so that %s holds at least four subnets",
			network.Bits()+2, p.network, network.Bits(), p.network)
	}
	host := ones(network.Addr().BitLen() - subnetLen)
	for _, f := range []struct {
		name string
		a    netip.Addr
	}{{p.min, lo}, {p.max, hi}} {
		switch {
		case !f.a.IsValid():
			return fieldErr(f.name, "", "must be set (ParseConfig derives it from %s)", p.network)
		case f.a.Is4() != p.is4 || f.a.Is4In6() || f.a.Zone() != "":
			return fieldErr(f.name, f.a.String(), "must be an %s address such as %s", fam, example(p.is4, false))
		case !network.Contains(f.a):
			return fieldErr(f.name, f.a.String(), "must be inside %s %s", p.network, network)
		case !fromAddr(f.a).and(host).isZero():
			return fieldErr(f.name, f.a.String(), "must be on a /%d boundary (%s)", subnetLen,
				netip.PrefixFrom(f.a, subnetLen).Masked().Addr())
		}
	}
	if lo.Compare(hi) > 0 {
		return fieldErr(p.min, lo.String(), "must not be above %s %s", p.max, hi)
	}
	return nil
}
