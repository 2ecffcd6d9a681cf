//go:build linux

package encap

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLoopback measures WriteBatch→ReadBatch over loopback: each
// iteration sends one batch of 1400-byte datagrams (one flow, so GSO runs
// and GRO trains form when on) and reads them all back. One batch in flight
// keeps the receive buffer from overflowing.
func BenchmarkLoopback(b *testing.B) {
	for _, mode := range []struct {
		name string
		o    Options
	}{{"gso_gro", DefaultOptions()}, {"plain", plainOptions()}} {
		b.Run(mode.name, func(b *testing.B) {
			const n, size = 128, 1400
			tx := listenT(b, "127.0.0.1:0", mode.o)
			rx := listenT(b, "127.0.0.1:0", mode.o)
			pkts := make([][]byte, n)
			addrs := make([]netip.AddrPort, n)
			for i := range pkts {
				pkts[i] = payload(0, i, size)
				addrs[i] = rx.LocalAddr()
			}
			bufs := newBufs(n, Headroom+MaxDatagram)
			sizes := make([]int, n)
			from := make([]netip.AddrPort, n)
			// A lost datagram would block ReadBatch for good: close instead.
			guard := time.AfterFunc(time.Hour, func() { rx.Close() })
			defer guard.Stop()
			b.SetBytes(n * size)
			b.ReportAllocs()
			for b.Loop() {
				guard.Reset(lossGuard)
				if err := tx.WriteBatch(pkts, addrs); err != nil {
					b.Fatal(err)
				}
				if err := readAll(rx, bufs, sizes, from, int(n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}

// BenchmarkLoopbackViews is BenchmarkLoopback's gso_gro case read with
// ReadViews (no copy into the caller's buffers), the router's way.
func BenchmarkLoopbackViews(b *testing.B) {
	const n, size = 128, 1400
	tx := listenT(b, "127.0.0.1:0", DefaultOptions())
	rx := listenT(b, "127.0.0.1:0", DefaultOptions())
	pkts := make([][]byte, n)
	addrs := make([]netip.AddrPort, n)
	for i := range pkts {
		pkts[i] = payload(0, i, size)
		addrs[i] = rx.LocalAddr()
	}
	views := make([][]byte, n)
	from := make([]netip.AddrPort, n)
	guard := time.AfterFunc(time.Hour, func() { rx.Close() })
	defer guard.Stop()
	b.SetBytes(n * size)
	b.ReportAllocs()
	for b.Loop() {
		guard.Reset(lossGuard)
		if err := tx.WriteBatch(pkts, addrs); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; {
			k, err := rx.ReadViews(views, from)
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "datagrams/s")
}
