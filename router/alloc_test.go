package router

import (
	"testing"
	"time"

	"github.com/feltnet/felt/router/routertest"
)

// TestEngineBatchAllocatesNothing sends whole batches from a's TUN to b's
// TUN through both running engines and the fakes (which reuse their
// buffers): a's outbound loop and b's inbound loop together must not
// allocate.
func TestEngineBatchAllocatesNothing(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := mesh(t, f, 3)
			a, b, c := h[0], h[1], h[2]
			const n = 32
			pkts := make([][]byte, n)
			for i := range pkts {
				to := b
				if i%4 == 3 {
					to = c // two peers, so the grouping runs too
				}
				pkts[i] = ipv4(a.ip(1), to.ip(2), 64, uint32(i), 1400)
			}
			buf := make([]byte, 65536)
			// a packet lost would block NextInto: close the devices then
			watchdog := time.AfterFunc(time.Minute, func() { b.dev.Close(); c.dev.Close() })
			defer watchdog.Stop()
			var got int
			batch := func() {
				if err := a.dev.Inject(pkts...); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					to := b.dev
					if i%4 == 3 {
						to = c.dev
					}
					if _, err := to.NextInto(buf); err != nil {
						t.Fatal(err)
					}
					got++
				}
			}
			// the fakes' queues (1024 slots) grow each slot's buffer on its
			// first use: go round them all once before measuring
			for range 4*1024/n + 1 { // c gets a quarter of each batch
				batch()
			}
			got = 0
			allocs := testing.AllocsPerRun(50, batch)
			if allocs != 0 {
				t.Errorf("%v allocations per batch of %d, want 0", allocs, n)
			}
			if got != 51*n {
				t.Errorf("%d packets arrived, want %d", got, 51*n)
			}
		})
	}
}

// TestForwardAllocatesNothing measures one outbound and one inbound batch
// directly (no fakes copying in between).
func TestForwardAllocatesNothing(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			bb := newBenchBed(t, f, 64, 1400, 8)
			if a := testing.AllocsPerRun(200, bb.outboundBatch); a != 0 {
				t.Errorf("outbound: %v allocations per batch, want 0", a)
			}
			if a := testing.AllocsPerRun(200, bb.inboundBatch); a != 0 {
				t.Errorf("inbound: %v allocations per batch, want 0", a)
			}
			if bb.sink.Packets.Load() == 0 || bb.e.Stats().Snapshot().TotalDropped() != 0 {
				t.Errorf("sink got %d packets, drops %v: the batches did not go through", bb.sink.Packets.Load(), bb.e.Stats().Snapshot().Drops)
			}
		})
	}
}

// relayAllocs injects pkts into from and takes as many packets from to, once
// round the fakes' queues (1024 slots, each growing its buffer on first use)
// and then under testing.AllocsPerRun, whose result it returns. A lost
// packet closes to after a minute, failing the test instead of hanging it.
func relayAllocs(t *testing.T, from, to *routertest.Device, pkts [][]byte) float64 {
	t.Helper()
	buf := make([]byte, 65536)
	watchdog := time.AfterFunc(time.Minute, func() { to.Close() })
	defer watchdog.Stop()
	batch := func() {
		if err := from.Inject(pkts...); err != nil {
			t.Fatal(err)
		}
		for range pkts {
			if _, err := to.NextInto(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 1024/len(pkts) + 1 {
		batch()
	}
	return testing.AllocsPerRun(50, batch)
}
