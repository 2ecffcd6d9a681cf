package lease

import (
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
)

// TestCacheScale reports the memory of one agent's watch cache holding
// 5,000 other leases (vxlan attrs), and checks a re-list of the same set
// emits nothing and a re-list with one change emits just that change.
func TestCacheScale(t *testing.T) {
	const n = 5000
	leases := make([]Lease, n)
	for i := range leases {
		leases[i] = Lease{Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), Attrs: cacheAttrs(i)}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewCache(netip.Prefix{})
	if evs := c.Reset(leases); len(evs) != n {
		t.Fatalf("first Reset: %d events, want %d", len(evs), n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	if evs := c.Reset(leases); len(evs) != 0 {
		t.Fatalf("Reset with the same leases: %d events, want none", len(evs))
	}
	changed := slices.Clone(leases)
	changed[7].Attrs = cacheAttrs(n + 1)
	if evs := c.Reset(changed); len(evs) != 1 || evs[0].Lease.Subnet != leases[7].Subnet {
		t.Fatalf("Reset with one lease changed: %v, want one event for %s", evs, leases[7].Subnet)
	}
	t.Logf("watch cache with %d leases: %.1f KiB heap (%.0f bytes per lease)", n, float64(grew)/1024, float64(grew)/n)
	runtime.KeepAlive(c)
}

// cacheAttrs is the vxlan value of node i: a distinct public IP and MAC.
func cacheAttrs(i int) Attrs {
	ip := netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
	return NewVXLANAttrs(ip, 1, net.HardwareAddr{0x02, 0xfe, 0, 0, byte(i >> 8), byte(i)})
}
