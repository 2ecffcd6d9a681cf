package demo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{FeltBin: "/bin/true"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosts != 3 || c.Backend != "udp" || c.Name != "fdemo" || c.Underlay != DefaultUnderlay || c.Network != DefaultNetwork || c.Transfer != 16<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	if got, want := c.netConfig(), `{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`; got != want {
		t.Fatalf("netConfig %s, want %s", got, want)
	}
	c.Backend, c.DirectRouting = "vxlan", true
	if got, want := c.netConfig(), `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}`; got != want {
		t.Fatalf("netConfig %s, want %s", got, want)
	}
}

// TestConfigBadInput: each bad field gives an error naming the field, the
// value and the rule.
func TestConfigBadInput(t *testing.T) {
	for _, tt := range []struct {
		c    Config
		want string
	}{
		{Config{Hosts: 1}, "hosts 1: must be between 2 and 20"},
		{Config{Hosts: 21}, "hosts 21: must be between 2 and 20"},
		{Config{Backend: "ipip"}, `backend "ipip": must be udp, vxlan, wireguard or host-gw`},
		{Config{Backend: "udp", DirectRouting: true}, `direct-routing with backend "udp": DirectRouting is a vxlan option`},
		{Config{Name: "Demo"}, `name "Demo": must be 2 to 9 lower-case letters and digits`},
		{Config{Name: "toolongname"}, `name "toolongname": must be 2 to 9`},
		{Config{Network: netip.MustParsePrefix("10.5.0.0/24")}, "network 10.5.0.0/24: must be an IPv4 network of /18 or larger"},
		{Config{Network: netip.MustParsePrefix("10.5.1.0/16")}, "network 10.5.1.0/16: must be an IPv4 network of /18 or larger without host bits"},
		{Config{Network: netip.MustParsePrefix("fd00::/48")}, "network fd00::/48: must be an IPv4 network"},
		{Config{Underlay: netip.MustParsePrefix("10.5.3.0/24")}, "underlay 10.5.3.0/24: must not overlap the overlay network 10.5.0.0/16"},
		{Config{Transfer: -1}, "transfer -1 bytes: must not be negative"},
	} {
		tt.c.FeltBin = "/bin/true"
		err := tt.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.c, err, tt.want)
		}
	}
}

// TestFreePortsDistinct: the ports for etcd's client and peer URLs are never
// the same one (they were once, when the first was released before the
// second was chosen).
func TestFreePortsDistinct(t *testing.T) {
	for range 200 {
		ps, err := freePorts(netip.MustParseAddr("127.0.0.1"), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0] == ps[1] {
			t.Fatalf("freePorts = %v, want two distinct ports", ps)
		}
	}
}
