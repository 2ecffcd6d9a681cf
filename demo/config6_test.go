package demo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigIPv6(t *testing.T) {
	c, err := Config{IPv6: true, Backend: "vxlan", FeltBin: "/bin/true"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Underlay6 != DefaultUnderlay6 || c.IPv6Network != DefaultIPv6Network {
		t.Errorf("defaults: %s %s", c.Underlay6, c.IPv6Network)
	}
	const want = `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"vxlan"}}`
	if got := c.netConfig(); got != want {
		t.Errorf("netConfig = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{IPv6: true, Backend: "host-gw"}, `ipv6 with backend "host-gw"`},
		{Config{IPv6: true, Backend: "vxlan", DirectRouting: true}, "ipv6 with direct-routing"},
		{Config{IPv6: true, Underlay6: netip.MustParsePrefix("10.1.0.0/16")}, "underlay6 10.1.0.0/16"},
		{Config{IPv6: true, IPv6Network: netip.MustParsePrefix("fd00:5::/64")}, "ipv6-network fd00:5::/64"},
		{Config{IPv6: true, Underlay6: netip.MustParsePrefix("fd00:5::/64")}, "must not overlap"},
	} {
		tc.c.FeltBin = "/bin/true"
		if _, err := tc.c.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}
