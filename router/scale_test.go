package router_test

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/feltnet/felt/router"
)

// scalePeers returns n peers with distinct /24s of 10.0.0.0/8 and distinct
// public addresses, as n leases would.
func scalePeers(n int) []router.Peer {
	peers := make([]router.Peer, n)
	for i := range peers {
		peers[i] = router.Peer{
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
			Addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), 8472),
			MAC:    [6]byte{0x02, 0, 0, 0, byte(i >> 8), byte(i)},
		}
	}
	return peers
}

// TestTableScale builds one agent's table with 5,000 peers in a /8 pool of
// /24s (65,536 slots), checks that every peer is found by destination and
// by sender, and reports the table's memory (heap in use before and after,
// with the input slice freed).
func TestTableScale(t *testing.T) {
	const n = 5000
	network := netip.MustParsePrefix("10.0.0.0/8")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := router.NewTable(network, 24, scalePeers(n))
	runtime.GC()
	runtime.ReadMemStats(&after)
	if tab.Len() != n || len(tab.Skipped()) != 0 {
		t.Fatalf("table of %d peers: Len %d, skipped %v", n, tab.Len(), tab.Skipped())
	}
	for _, p := range scalePeers(n) {
		dst := p.Subnet.Addr().Next()
		if got := tab.Lookup(dst); got == nil || got.Subnet != p.Subnet {
			t.Fatalf("Lookup(%s) = %v, want %s", dst, got, p.Subnet)
		}
		if got := tab.BySender(p.Addr.Addr()); got == nil || got.Subnet != p.Subnet {
			t.Fatalf("BySender(%s) = %v, want %s", p.Addr.Addr(), got, p.Subnet)
		}
	}
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("table with %d peers: %.1f KiB heap (%.0f bytes per peer; includes the 256 KiB slot array of a /8 pool of /24s)",
		n, float64(grew)/1024, float64(grew)/n)
	runtime.KeepAlive(tab)
}

// BenchmarkNewTable5000 measures rebuilding the table for 5,000 peers, as
// the agent does on every lease change (off the packet path).
func BenchmarkNewTable5000(b *testing.B) {
	network := netip.MustParsePrefix("10.0.0.0/8")
	peers := scalePeers(5000)
	b.ReportAllocs()
	for b.Loop() {
		router.NewTable(network, 24, peers)
	}
}
