package lease

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// ErrOutOfSubnets means every subnet of the pool overlaps a held one. It is
// returned wrapped, naming the pool and how many subnets are held; the
// caller waits for leases to expire (or an operator widens the pool).
var ErrOutOfSubnets = errors.New("out of subnets")

// candidates is how many free subnets Allocate chooses among, as flanneld,
// so that racing nodes rarely pick the same one.
const candidates = 100

// Allocate picks a free IPv4 subnet from cfg's pool: it walks SubnetMin to
// SubnetMax, skips every subnet that overlaps a taken prefix of any length
// (IPv6 prefixes in taken are ignored), and picks uniformly among the first
// 100 free ones. It does not modify taken.
func Allocate(cfg *Config, taken []netip.Prefix, rnd *rand.Rand) (netip.Prefix, error) {
	return allocate(cfg.Network, cfg.SubnetLen, cfg.SubnetMin, cfg.SubnetMax, taken, rnd)
}

// AllocateIPv6 is Allocate for the IPv6 pool of a dual-stack config. As in
// flanneld, the IPv6 subnet is chosen independently of the IPv4 one.
func AllocateIPv6(cfg *Config, taken []netip.Prefix, rnd *rand.Rand) (netip.Prefix, error) {
	if !cfg.EnableIPv6 {
		return netip.Prefix{}, errors.New("allocate: EnableIPv6 false: the config has no IPv6 pool")
	}
	return allocate(cfg.IPv6Network, cfg.IPv6SubnetLen, cfg.IPv6SubnetMin, cfg.IPv6SubnetMax, taken, rnd)
}

// span is a closed range of addresses held by a taken prefix.
type span struct{ lo, hi u128 }

func allocate(network netip.Prefix, subnetLen int, lo, hi netip.Addr, taken []netip.Prefix, rnd *rand.Rand) (netip.Prefix, error) {
	if !network.IsValid() || !lo.IsValid() || !hi.IsValid() || subnetLen <= network.Bits() ||
		subnetLen > network.Addr().BitLen() || lo.BitLen() != network.Addr().BitLen() {
		return netip.Prefix{}, fmt.Errorf("allocate: pool %s (%s-%s, /%d): invalid, validate the config first",
			network, lo, hi, subnetLen)
	}
	is4 := network.Addr().Is4()
	spans, held := takenSpans(taken, is4)
	host := ones(network.Addr().BitLen() - subnetLen)
	size := pow2(network.Addr().BitLen() - subnetLen)
	last := fromAddr(hi)
	free := make([]u128, 0, candidates)
	i := 0 // spans before i end below the candidate
	for c := fromAddr(lo); c.cmp(last) <= 0 && len(free) < candidates; {
		cEnd := c.or(host)
		for i < len(spans) && spans[i].hi.cmp(c) < 0 {
			i++
		}
		if i < len(spans) && spans[i].lo.cmp(cEnd) <= 0 {
			// Overlap: jump to the first aligned subnet past this span.
			next := spans[i].hi.and(host.not())
			var carry bool
			if c, carry = next.add(size); carry || (is4 && c.hi|c.lo>>32 != 0) {
				break
			}
			continue
		}
		free = append(free, c)
		var carry bool
		if c, carry = c.add(size); carry || (is4 && c.lo>>32 != 0) {
			break
		}
	}
	if len(free) == 0 {
		return netip.Prefix{}, fmt.Errorf("%w: pool %s (%s-%s, /%d) has no free subnet; %d prefixes held",
			ErrOutOfSubnets, network, lo, hi, subnetLen, held)
	}
	return netip.PrefixFrom(free[rnd.IntN(len(free))].addr(is4), subnetLen), nil
}

// takenSpans returns the ranges of the taken prefixes of one family, sorted
// and merged, and how many prefixes of that family there were.
func takenSpans(taken []netip.Prefix, is4 bool) ([]span, int) {
	spans := make([]span, 0, len(taken))
	for _, p := range taken {
		if !p.IsValid() || p.Addr().Is4() != is4 {
			continue
		}
		p = p.Masked()
		spans = append(spans, span{fromAddr(p.Addr()), lastAddr(p)})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.lo.cmp(b.lo) })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && s.lo.cmp(merged[n-1].hi) <= 0 {
			if s.hi.cmp(merged[n-1].hi) > 0 {
				merged[n-1].hi = s.hi
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged, len(spans)
}
