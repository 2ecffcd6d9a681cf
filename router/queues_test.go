package router

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

// twoQueues returns host a with a second queue (its own fake TUN queue and
// a Conn at a's address on port 9472, as a second socket would be) and host
// b with one, peered and running.
func twoQueues(t *testing.T, f framing) (a, b *host, dev1 *routertest.Device, conn1 *routertest.Conn) {
	t.Helper()
	nw := routertest.NewNetwork()
	dev1 = routertest.NewDevice(64, 1024)
	conn1, err := nw.Listen(netip.MustParseAddrPort("192.0.2.1:9472"), 64, 1024)
	if err != nil {
		t.Fatal(err)
	}
	a = newHostWith(t, nw, f, 1, 64, func(c *Config) { c.Queues = []Queue{{Device: dev1, Conn: conn1}} })
	b = newHost(t, nw, f, 2, 64)
	a.eng.SetPeers([]Peer{b.peer()})
	b.eng.SetPeers([]Peer{a.peer()})
	a.start(t)
	b.start(t)
	return a, b, dev1, conn1
}

// TestQueuesForwardBothWaysAndSumStats: each of a's queues forwards both
// ways on its own Device and Conn, and a's counters and drops are the sums
// over the queues.
func TestQueuesForwardBothWaysAndSumStats(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			a, b, dev1, conn1 := twoQueues(t, f)
			if a.eng.NumQueues() != 2 || b.eng.NumQueues() != 1 {
				t.Fatalf("NumQueues a %d b %d, want 2 and 1", a.eng.NumQueues(), b.eng.NumQueues())
			}
			// Outbound on each queue reaches b.
			for q, dev := range []*routertest.Device{a.dev, dev1} {
				p := ipv4(a.ip(7), b.ip(9), 64, uint32(q), 300)
				if err := dev.Inject(p); err != nil {
					t.Fatal(err)
				}
				if got := b.recv(t); !bytes.Equal(got, want(f, p)) {
					t.Fatalf("queue %d → b: got %x", q, got)
				}
			}
			// A datagram arriving on queue 1's socket is written to queue
			// 1's TUN queue, not queue 0's.
			p := ipv4(b.ip(7), a.ip(9), 64, 77, 300)
			buf := make([]byte, encap.Headroom+len(p))
			copy(buf[encap.Headroom:], p)
			frame, r := b.framer.Encap(buf, encap.Headroom, len(p), a.mac)
			if r != drop.OK {
				t.Fatal(r)
			}
			if err := conn1.Deliver(b.addr, frame); err != nil {
				t.Fatal(err)
			}
			got, err := dev1.Next(10 * time.Second)
			if err != nil {
				t.Fatalf("queue 1's TUN got nothing: %v", err)
			}
			if seqOf(got) != 77 {
				t.Fatalf("queue 1's TUN got packet %d, want 77", seqOf(got))
			}
			if a.dev.Writes() != 0 {
				t.Errorf("queue 0's TUN got %d writes, want 0", a.dev.Writes())
			}
			// A drop on queue 1 is counted with queue 0's.
			if err := dev1.Inject(ipv4(a.ip(7), "10.5.99.1", 64, 5, 100)); err != nil {
				t.Fatal(err)
			}
			if err := a.dev.Inject(ipv4(a.ip(7), "10.5.98.1", 64, 6, 100)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "both queues counted", func() bool {
				s := a.eng.Stats().Snapshot()
				return s.OutPackets == 2 && s.InPackets == 1 && s.Dropped(drop.NoRoute) == 2
			})
		})
	}
}

// TestQueuesStopTogether: when one queue's Device fails for good, Run stops
// every loop and closes every Device and Conn.
func TestQueuesStopTogether(t *testing.T) {
	nw := routertest.NewNetwork()
	dev1 := routertest.NewDevice(64, 1024)
	conn1, err := nw.Listen(netip.MustParseAddrPort("192.0.2.1:9472"), 64, 1024)
	if err != nil {
		t.Fatal(err)
	}
	a := newHostWith(t, nw, udpFraming, 1, 64, func(c *Config) { c.Queues = []Queue{{Device: dev1, Conn: conn1}} })
	done := make(chan error, 1)
	go func() { done <- a.eng.Run(context.Background()) }()
	dev1.Close() // queue 1's TUN fd gone: its outbound loop fails
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "outbound") {
			t.Errorf("Run = %v, want queue 1's outbound read error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a queue's Device closed")
	}
	if err := a.dev.Inject([]byte{0x45}); err == nil {
		t.Error("queue 0's Device still open")
	}
	from := netip.MustParseAddrPort("192.0.2.2:8472")
	if err := a.conn.Deliver(from, []byte{1}); err == nil {
		t.Error("queue 0's Conn still open")
	}
	if err := conn1.Deliver(from, []byte{1}); err == nil {
		t.Error("queue 1's Conn still open")
	}
}

// TestQueueBatchAllocatesNothing: queue 1's loops forward a batch with no
// allocation, as queue 0's do (TestForwardAllocatesNothing).
func TestQueueBatchAllocatesNothing(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			a, b, dev1, _ := twoQueues(t, f)
			const n = 32
			pkts := make([][]byte, n)
			for i := range pkts {
				pkts[i] = ipv4(a.ip(1), b.ip(2), 64, uint32(i), 1400)
			}
			if allocs := relayAllocs(t, dev1, b.dev, pkts); allocs != 0 {
				t.Errorf("%v allocations per batch of %d on queue 1, want 0", allocs, n)
			}
		})
	}
}
