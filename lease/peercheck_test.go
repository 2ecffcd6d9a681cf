package lease

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckPeer(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","IPv6SubnetLen":64}`)
	own := Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:1::/64")}
	for _, tc := range []struct {
		sn, sn6 string
		rule    string // "" = accepted
		msg     string
	}{
		{"10.5.2.0/24", "", "", ""},
		{"10.5.255.0/24", "fd00:5:0:2::/64", "", ""},
		{"10.5.0.0/24", "", "", ""}, // below the default SubnetMin, still in Network
		{"0.0.0.0/1", "", RuleOutsideNetwork, "lease 0.0.0.0/1: Subnet 0.0.0.0/1: must lie inside Network 10.5.0.0/16"},
		{"10.0.0.0/8", "", RuleOutsideNetwork, "Subnet 10.0.0.0/8: must lie inside Network"},
		{"10.6.1.0/24", "", RuleOutsideNetwork, "Subnet 10.6.1.0/24: must lie inside Network 10.5.0.0/16"},
		{"10.5.2.0/25", "", RuleSubnetLen, "Subnet 10.5.2.0/25: must be exactly /24 (SubnetLen)"},
		{"10.5.0.0/23", "", RuleSubnetLen, "must be exactly /24"},
		{"10.5.2.7/24", "", RuleHostBits, "Subnet 10.5.2.7/24: host bits must be zero (10.5.2.0/24)"},
		{"10.5.1.0/24", "", RuleOwnSubnet, "Subnet 10.5.1.0/24: overlaps this node's own subnet 10.5.1.0/24"},
		{"fd00::/64", "", RuleOutsideNetwork, "must be an IPv4 subnet inside Network"},
		{"", "", RuleOutsideNetwork, "must be an IPv4 subnet"},
		{"10.5.2.0/24", "::/1", RuleOutsideNetwork, "IPv6Subnet ::/1: must lie inside IPv6Network fd00:5::/48"},
		{"10.5.2.0/24", "fd00:5:0:2::/80", RuleSubnetLen, "must be exactly /64 (IPv6SubnetLen)"},
		{"10.5.2.0/24", "fd00:5:0:1::/64", RuleOwnSubnet, "IPv6Subnet fd00:5:0:1::/64: overlaps"},
		{"10.5.2.0/24", "10.9.0.0/16", RuleOutsideNetwork, "must be an IPv6 subnet"},
	} {
		l := Lease{Attrs: NewUDPAttrs(netip.MustParseAddr("192.0.2.1"))}
		if tc.sn != "" {
			l.Subnet = netip.MustParsePrefix(tc.sn)
		}
		if tc.sn6 != "" {
			l.IPv6Subnet = netip.MustParsePrefix(tc.sn6)
		}
		err := CheckPeer(cfg, own, l)
		if tc.rule == "" {
			if err != nil {
				t.Errorf("CheckPeer(%s %s) = %v, want nil", tc.sn, tc.sn6, err)
			}
			continue
		}
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Rule != tc.rule || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("CheckPeer(%s %s) = %v, want rule %s and %q", tc.sn, tc.sn6, err, tc.rule, tc.msg)
		}
	}
	// An IPv4-only node does not look at a dual-stack lease's IPv6 half.
	v4 := *cfg
	v4.EnableIPv6 = false
	l := Lease{Subnet: netip.MustParsePrefix("10.5.2.0/24"), IPv6Subnet: netip.MustParsePrefix("::/1")}
	if err := CheckPeer(&v4, own, l); err != nil {
		t.Errorf("IPv4-only config: %v", err)
	}
	if err := CheckPeer(nil, own, l); err == nil {
		t.Error("nil config: accepted")
	}
}
