//go:build linux

package encap

import (
	"net/netip"
	"testing"
	"time"
)

// loopbackN and loopbackSize are the batch BenchmarkLoopback and BenchmarkLoopbackViews
// send per iteration: 128 datagrams of 1400 bytes, one flow.
const loopbackN, loopbackSize = 128, 1400

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
			bufs := newBufs(loopbackN, Headroom+MaxDatagram)
			sizes := make([]int, loopbackN)
			from := make([]netip.AddrPort, loopbackN)
			benchLoopback(b, mode.o, func(rx *Conn) error {
				return readAll(rx, bufs, sizes, from, loopbackN)
			})
		})
	}
}

// BenchmarkLoopbackViews is BenchmarkLoopback's gso_gro case read with
// ReadViews (no copy into the caller's buffers), the router's way.
func BenchmarkLoopbackViews(b *testing.B) {
	views := make([][]byte, loopbackN)
	from := make([]netip.AddrPort, loopbackN)
	benchLoopback(b, DefaultOptions(), func(rx *Conn) error { return readAllViews(rx, views, from, loopbackN) })
}

// benchLoopback sends one batch per iteration between two Conns with
// options o and reads it back with read, which must return once all
// loopbackN datagrams are in.
func benchLoopback(b *testing.B, o Options, read func(rx *Conn) error) {
	tx, rx, pkts, addrs := loopbackPair(b, o, loopbackN, loopbackSize)
	// A lost datagram would block the read for good: close instead.
	guard := time.AfterFunc(time.Hour, func() { rx.Close() })
	defer guard.Stop()
	b.SetBytes(loopbackN * loopbackSize)
	b.ReportAllocs()
	for b.Loop() {
		guard.Reset(lossGuard)
		if err := tx.WriteBatch(pkts, addrs); err != nil {
			b.Fatal(err)
		}
		if err := read(rx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*loopbackN)/b.Elapsed().Seconds(), "datagrams/s")
}
