package lease

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// fuzzPrefix makes a prefix of either family from raw fuzz input; bits is
// taken modulo the family's length + 1.
func fuzzPrefix(v6 bool, a []byte, bits uint8) netip.Prefix {
	if v6 {
		var b [16]byte
		copy(b[:], a)
		return netip.PrefixFrom(netip.AddrFrom16(b), int(bits)%129)
	}
	var b [4]byte
	copy(b[:], a)
	return netip.PrefixFrom(netip.AddrFrom4(b), int(bits)%33)
}

// Invariants: no panic; an accepted lease lies inside Network, is exactly
// SubnetLen bits, masked and apart from own; two accepted leases are equal or
// disjoint (so none overlaps another); a refusal is a *PeerError with a
// known rule whose message names the field and the value.
func FuzzCheckPeer(f *testing.F) {
	f.Add(false, []byte{10, 5, 0, 0}, uint8(16), uint8(24), []byte{10, 5, 1, 0}, []byte{10, 5, 2, 0}, uint8(24), []byte{0, 0, 0, 0}, uint8(1))
	f.Add(false, []byte{10, 5, 0, 0}, uint8(16), uint8(24), []byte{10, 5, 1, 0}, []byte{10, 5, 1, 0}, uint8(25), []byte{10, 5, 1, 128}, uint8(25))
	f.Add(true, []byte{0xfd, 0, 0, 5}, uint8(48), uint8(64), []byte{0xfd, 0, 0, 5, 0, 0, 0, 1}, []byte{0xfd, 0, 0, 5, 0, 0, 0, 2}, uint8(64), []byte{0xfd, 0, 0, 5}, uint8(56))
	f.Fuzz(func(t *testing.T, v6 bool, netA []byte, netBits, subnetLen uint8, ownA, aA []byte, aBits uint8, bA []byte, bBits uint8) {
		network := fuzzPrefix(v6, netA, netBits).Masked()
		sl := int(subnetLen) % 130
		own := netip.PrefixFrom(fuzzPrefix(v6, ownA, 0).Addr(), sl).Masked()
		cfg := &Config{Network: netip.MustParsePrefix("10.5.0.0/16"), SubnetLen: 24, EnableIPv4: true}
		field := "Subnet"
		mk := func(p netip.Prefix) Lease { return Lease{Subnet: p} }
		ownL := Lease{Subnet: own}
		if v6 {
			cfg.EnableIPv6, cfg.IPv6Network, cfg.IPv6SubnetLen = true, network, sl
			field = "IPv6Subnet"
			mk = func(p netip.Prefix) Lease { return Lease{Subnet: netip.MustParsePrefix("10.5.9.0/24"), IPv6Subnet: p} }
			ownL = Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24"), IPv6Subnet: own}
		} else {
			cfg.Network, cfg.SubnetLen = network, sl
		}
		pa, pb := fuzzPrefix(v6, aA, aBits), fuzzPrefix(v6, bA, bBits)
		ea, eb := CheckPeer(cfg, ownL, mk(pa)), CheckPeer(cfg, ownL, mk(pb))
		for _, c := range []struct {
			p   netip.Prefix
			err error
		}{{pa, ea}, {pb, eb}} {
			if c.err == nil {
				if c.p.Bits() != sl || c.p.Masked() != c.p || c.p.Bits() < network.Bits() || !network.Contains(c.p.Addr()) || c.p.Overlaps(own) {
					t.Fatalf("accepted %s under Network %s SubnetLen %d own %s", c.p, network, sl, own)
				}
				continue
			}
			var pe *PeerError
			if !errors.As(c.err, &pe) {
				t.Fatalf("CheckPeer(%s): %v is not a *PeerError", c.p, c.err)
			}
			switch pe.Rule {
			case RuleOutsideNetwork, RuleSubnetLen, RuleHostBits, RuleOwnSubnet:
			default:
				t.Fatalf("CheckPeer(%s): unknown rule %q", c.p, pe.Rule)
			}
			if msg := c.err.Error(); !strings.Contains(msg, field+" "+c.p.String()+": ") {
				t.Fatalf("CheckPeer(%s): %q does not name %s and the value", c.p, msg, field)
			}
		}
		if ea == nil && eb == nil && pa != pb && pa.Overlaps(pb) {
			t.Fatalf("accepted overlapping %s and %s (Network %s SubnetLen %d)", pa, pb, network, sl)
		}
	})
}
