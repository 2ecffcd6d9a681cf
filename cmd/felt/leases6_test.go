package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
)

// felt leases shows the IPv6 side: subnet, PublicIPv6 and the v6 VtepMAC,
// and an IPv6-only lease with "-" for its IPv4 subnet and BackendData.
func TestWriteLeasesIPv6(t *testing.T) {
	mac4, _ := net.ParseMAC("c6:d2:32:6f:8f:44")
	mac6, _ := net.ParseMAC("9e:11:0a:5b:c3:01")
	ls := []lease.Lease{
		{IPv6Subnet: netip.MustParsePrefix("fd00:5:0:35::/64"),
			Attrs: lease.NewDualVXLANAttrs(netip.Addr{}, netip.MustParseAddr("fd00:64::4"), 1, nil, mac6)},
		{Subnet: netip.MustParsePrefix("10.5.52.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:34::/64"),
			Attrs: lease.NewDualVXLANAttrs(netip.MustParseAddr("192.168.64.3"), netip.MustParseAddr("fd00:64::3"), 1, mac4, mac6)},
	}
	var b strings.Builder
	if err := writeLeases(&b, ls, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"SUBNET", "IPV6", "SUBNET", "PUBLIC", "IP", "PUBLIC", "IPV6", "BACKEND", "VTEP", "MAC", "VTEP", "MAC", "V6", "EXPIRES", "IN"},
		{"10.5.52.0/24", "fd00:5:0:34::/64", "192.168.64.3", "fd00:64::3", "vxlan", "c6:d2:32:6f:8f:44", "9e:11:0a:5b:c3:01", "never"},
		{"-", "fd00:5:0:35::/64", "0.0.0.0", "fd00:64::4", "vxlan", "-", "9e:11:0a:5b:c3:01", "never"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), b.String())
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d = %q, want fields %q", i, l, want[i])
		}
	}
}
