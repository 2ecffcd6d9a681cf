//go:build linux

package encap

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
)

func listenDualT(t testing.TB, o Options) *Conn {
	t.Helper()
	if ln, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	c, err := ListenDualStack(0, o)
	if err != nil {
		t.Fatalf("ListenDualStack: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// One dual-stack socket talks to an IPv4 and an IPv6 peer in one batch, with
// GSO/GRO on and off; peers come back as plain (unmapped) addresses.
func TestDualStackRoundTrip(t *testing.T) {
	for _, o := range []Options{DefaultOptions(), plainOptions()} {
		t.Run(fmt.Sprintf("gso=%v,gro=%v", o.GSO, o.GRO), func(t *testing.T) {
			d := listenDualT(t, o)
			port := d.LocalAddr().Port()
			p4 := listenT(t, "127.0.0.1:0", o)
			p6 := listenT(t, "[::1]:0", o)
			c4, c6, cd := collect(p4, 0), collect(p6, 0), collect(d, 0)
			var pkts [][]byte
			var addrs []netip.AddrPort
			for i := range 40 {
				pkts = append(pkts, payload(i%2, i, 1000))
				if i%2 == 0 {
					addrs = append(addrs, p4.LocalAddr())
				} else {
					addrs = append(addrs, p6.LocalAddr())
				}
			}
			if err := d.WriteBatch(pkts, addrs); err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			c4.waitFor(t, 20)
			c6.waitFor(t, 20)
			for _, c := range []*collector{c4, c6} {
				c.mu.Lock()
				for _, g := range c.got {
					if g.from.Port() != port || !g.from.Addr().IsLoopback() {
						t.Errorf("datagram from %s, want loopback:%d", g.from, port)
					}
				}
				c.mu.Unlock()
			}
			// And back: both families reach it at its one port.
			if err := p4.WriteBatch([][]byte{payload(4, 0, 900)}, []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}); err != nil {
				t.Fatal(err)
			}
			if err := p6.WriteBatch([][]byte{payload(6, 0, 900)}, []netip.AddrPort{netip.AddrPortFrom(netip.IPv6Loopback(), port)}); err != nil {
				t.Fatal(err)
			}
			cd.waitFor(t, 2)
			cd.mu.Lock()
			defer cd.mu.Unlock()
			seen := map[netip.AddrPort]bool{}
			for _, g := range cd.got {
				seen[g.from] = true
				if !bytes.Equal(g.data[:2], []byte{0, 4}) && !bytes.Equal(g.data[:2], []byte{0, 6}) {
					t.Errorf("unexpected datagram % x", g.data[:6])
				}
			}
			if !seen[p4.LocalAddr()] || !seen[p6.LocalAddr()] {
				t.Errorf("senders seen %v, want %s and %s (IPv4 unmapped)", seen, p4.LocalAddr(), p6.LocalAddr())
			}
		})
	}
}

func TestDualStackBatchAllocs(t *testing.T) {
	d := listenDualT(t, DefaultOptions())
	rx4 := listenT(t, "127.0.0.1:0", DefaultOptions())
	rx6 := listenT(t, "[::1]:0", DefaultOptions())
	const n = 16
	pkts := make([][]byte, n)
	addrs := make([]netip.AddrPort, n)
	for i := range pkts {
		pkts[i] = payload(0, i, 1200)
		addrs[i] = rx4.LocalAddr()
		if i >= n/2 {
			addrs[i] = rx6.LocalAddr()
		}
	}
	bufs := newBufs(n, Headroom+MaxDatagram)
	sizes := make([]int, n)
	from := make([]netip.AddrPort, n)
	allocs := cycleAllocs(t, 30, d, pkts, addrs, func() error {
		for _, rx := range []*Conn{rx4, rx6} {
			if err := readAll(rx, bufs, sizes, from, n/2); err != nil {
				return err
			}
		}
		return nil
	})
	if allocs != 0 {
		t.Fatalf("dual-stack WriteBatch to both families: %.1f allocations per cycle, want 0", allocs)
	}
}
