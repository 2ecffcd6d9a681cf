package bench

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/feltnet/felt/netns"
)

// Host 0's device is built as flanneld builds it: flannel.1 over the IPv4
// underlay, its address /32; flannel-v6.1 over the IPv6 underlay, its
// address /128 (nodad). Host 1 is reached through one permanent neighbour,
// one FDB entry to host 1's underlay address of the family and one onlink
// route.
func TestKernelVXLANCmds(t *testing.T) {
	hosts := []*netns.Host{
		{Name: "h0", Iface: "eth0", Addr: netip.MustParseAddr("192.168.9.1")},
		{Name: "h1", Iface: "eth1", Addr: netip.MustParseAddr("192.168.9.2")},
	}
	for _, tc := range []struct {
		sc   Scenario
		want [][]string
	}{
		{KernelVXLAN, [][]string{
			{"ip", "link", "add", "flannel.1", "address", "02:fb:00:00:00:01", "mtu", "1450", "type", "vxlan",
				"id", "1", "local", "192.168.9.1", "dev", "eth0", "dstport", "8472", "nolearning"},
			{"ip", "addr", "add", "10.7.1.0/32", "dev", "flannel.1"},
			{"ip", "link", "set", "flannel.1", "up"},
			{"ip", "neigh", "replace", "10.7.2.0", "lladdr", "02:fb:00:00:00:02", "dev", "flannel.1", "nud", "permanent"},
			{"bridge", "fdb", "append", "02:fb:00:00:00:02", "dev", "flannel.1", "dst", "192.168.9.2", "self", "permanent"},
			{"ip", "route", "replace", "10.7.2.0/24", "via", "10.7.2.0", "dev", "flannel.1", "onlink"},
		}},
		{KernelVXLAN6, [][]string{
			{"ip", "link", "add", "flannel-v6.1", "address", "02:fb:00:00:06:01", "mtu", "1430", "type", "vxlan",
				"id", "1", "local", "fd99::1", "dev", "eth0", "dstport", "8472", "nolearning"},
			{"ip", "addr", "add", "fd07:1::/128", "dev", "flannel-v6.1", "nodad"},
			{"ip", "link", "set", "flannel-v6.1", "up"},
			{"ip", "-6", "neigh", "replace", "fd07:2::", "lladdr", "02:fb:00:00:06:02", "dev", "flannel-v6.1", "nud", "permanent"},
			{"bridge", "fdb", "append", "02:fb:00:00:06:02", "dev", "flannel-v6.1", "dst", "fd99::2", "self", "permanent"},
			{"ip", "-6", "route", "replace", "fd07:2::/64", "via", "fd07:2::", "dev", "flannel-v6.1", "onlink"},
		}},
	} {
		got := kernelVXLANOf(tc.sc).cmds(hosts, 0)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d commands, want %d: %q", tc.sc, len(got), len(tc.want), got)
		}
		for i := range tc.want {
			if !slices.Equal(got[i], tc.want[i]) {
				t.Errorf("%s: command %d:\n got %q\nwant %q", tc.sc, i, got[i], tc.want[i])
			}
		}
	}
}
