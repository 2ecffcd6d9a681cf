package lease

import (
	"net/netip"
	"strings"
	"testing"
)

const ipv6OnlyJSON = `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"vxlan"}}`

// flanneld's MakeSubnetKey names an IPv6-only lease by its empty IPv4 half
// and the IPv6 subnet; ParseSubnetKey gives the IPv4 half back as zero, so
// 0.0.0.0/0 never becomes a route.
func TestSubnetKeyIPv6Only(t *testing.T) {
	sn6 := netip.MustParsePrefix("fd00:5:0:34::/64")
	const want = "/coreos.com/network/subnets/0.0.0.0-0&fd00:5:0:34::-64"
	if got := SubnetKey(DefaultPrefix, netip.Prefix{}, sn6); got != want {
		t.Errorf("SubnetKey = %q, want %q", got, want)
	}
	sn, got6, err := ParseSubnetKey(want)
	if err != nil || sn.IsValid() || got6 != sn6 {
		t.Errorf("ParseSubnetKey(%q) = %v, %v, %v; want zero, %v, nil", want, sn, got6, err, sn6)
	}
	if l := (Lease{IPv6Subnet: sn6}); l.Key() != sn6 {
		t.Errorf("Key of an IPv6-only lease = %v, want %v", l.Key(), sn6)
	}
}

// EnableIPv4:false with the IPv6 pool is a valid config (Network may be
// absent, as flanneld allows); both families off is not.
func TestConfigIPv6Only(t *testing.T) {
	c, err := ParseConfig([]byte(ipv6OnlyJSON))
	if err != nil {
		t.Fatalf("IPv6-only config: %v", err)
	}
	if c.EnableIPv4 || !c.EnableIPv6 || c.IPv6SubnetLen != 64 {
		t.Errorf("parsed %+v", c)
	}
	_, err = ParseConfig([]byte(`{"EnableIPv4":false,"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`))
	if err == nil || !strings.Contains(err.Error(), "EnableIPv4") || !strings.Contains(err.Error(), "EnableIPv6") {
		t.Errorf("both families off: %v, want an error naming EnableIPv4 and EnableIPv6", err)
	}
}

// A peer of an IPv6-only cluster is checked on its IPv6 subnet alone; a key
// with a real IPv4 half does not belong there.
func TestCheckPeerIPv6Only(t *testing.T) {
	c, err := ParseConfig([]byte(ipv6OnlyJSON))
	if err != nil {
		t.Fatal(err)
	}
	own := Lease{IPv6Subnet: netip.MustParsePrefix("fd00:5:0:1::/64")}
	ok := Lease{IPv6Subnet: netip.MustParsePrefix("fd00:5:0:2::/64")}
	if err := CheckPeer(c, own, ok); err != nil {
		t.Errorf("IPv6-only peer: %v", err)
	}
	for _, bad := range []Lease{
		{IPv6Subnet: own.IPv6Subnet},
		{IPv6Subnet: netip.MustParsePrefix("fd00:6:0:2::/64")},
		{Subnet: netip.MustParsePrefix("10.5.1.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:3::/64")},
	} {
		if err := CheckPeer(c, own, bad); err == nil {
			t.Errorf("CheckPeer(%+v) passed", bad)
		}
	}
}
