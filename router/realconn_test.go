package router

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/router/routertest"
)

// realNode is an engine on encap's real UDP Conn with a fake TUN.
type realNode struct {
	dev    *routertest.Device
	eng    *Engine
	addr   netip.AddrPort
	subnet netip.Prefix
	mac    [6]byte
}

// realPair starts two engines over real UDP Conns on loopback (127.0.0.1
// and 127.0.0.2, so each peer has its own public IP), peered with each
// other; adjust may change node i's Config. They stop at cleanup.
func realPair(t *testing.T, f framing, adjust func(i int, c *Config)) (a, b *realNode) {
	t.Helper()
	nodes := make([]*realNode, 2)
	for i := range nodes {
		ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)})
		conn, err := encap.Listen(netip.AddrPortFrom(ip, 0), encap.DefaultOptions())
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ip, err)
		}
		n := &realNode{
			dev:    routertest.NewDevice(64, 1024),
			addr:   conn.LocalAddr(),
			subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 5, byte(i + 1), 0}), 24),
			mac:    [6]byte{2, 0, 0, 0, 0, byte(i + 1)},
		}
		cfg := Config{Device: n.dev, Conn: conn, Framer: newFramer(f, n.mac),
			Network: testNetwork, SubnetLen: 24, Local: n.subnet}
		if adjust != nil {
			adjust(i, &cfg)
		}
		n.eng, err = New(cfg, zap.NewNop())
		if err != nil {
			conn.Close()
			t.Fatal(err)
		}
		nodes[i] = n
	}
	a, b = nodes[0], nodes[1]
	a.eng.SetPeers([]Peer{{Subnet: b.subnet, Addr: b.addr, MAC: b.mac}})
	b.eng.SetPeers([]Peer{{Subnet: a.subnet, Addr: a.addr, MAC: a.mac}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for _, n := range nodes {
		go func() { done <- n.eng.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range nodes {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	return a, b
}

// TestOverRealSockets runs two engines over encap's real UDP Conn on
// loopback with fake TUNs. Needs no privileges.
func TestOverRealSockets(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			a, b := realPair(t, f, nil)
			const count = 100
			var sent [][]byte
			for i := range count {
				sent = append(sent, ipv4("10.5.1.7", "10.5.2.9", 64, uint32(i), 1000+i))
			}
			for i := 0; i < count; i += 25 {
				if err := a.dev.Inject(sent[i : i+25]...); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range sent {
				got, err := b.dev.Next(10 * time.Second)
				if err != nil {
					t.Fatalf("packet %d did not arrive: %v (a: %+v, b: %+v)", seqOf(p), err, a.eng.Stats().Snapshot(), b.eng.Stats().Snapshot())
				}
				if w := want(f, p); !bytes.Equal(got, w) {
					t.Fatalf("packet %d differs:\n got %x\nwant %x", seqOf(p), got, w)
				}
			}
		})
	}
}

// TestLingerWiredToRealConn: with Config.Linger set, a packet the inbound
// loop writes to the TUN makes the real Conn's idle hook poll the Device's
// fd (a pipe standing in for the TUN here) before the loop parks, and the
// wait is counted once (a hit, ready or, had the reply come after the 1 ms,
// a miss). Without Linger nothing polls.
func TestLingerWiredToRealConn(t *testing.T) {
	for _, linger := range []time.Duration{0, MaxLinger} {
		t.Run(linger.String(), func(t *testing.T) {
			r, w := pipe(t)
			var pd *pollDev
			a, b := realPair(t, udpFraming, func(i int, c *Config) {
				if i == 1 {
					pd = &pollDev{Device: c.Device, r: r, waiting: make(chan struct{}, 1)}
					c.Device, c.Linger = pd, linger
				}
			})
			if err := a.dev.Inject(ipv4("10.5.1.7", "10.5.2.9", 64, 1, 100)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.dev.Next(10 * time.Second); err != nil {
				t.Fatalf("no packet on b's TUN: %v", err)
			}
			select {
			case <-pd.waiting:
				if linger == 0 {
					t.Fatal("the Device's fd was polled with Linger 0")
				}
				w.Write([]byte{1})
			case <-time.After(100 * time.Millisecond):
				if linger != 0 {
					t.Fatal("no wait after the TUN write")
				}
				return
			}
			ok := func() bool { s := b.eng.Stats().Snapshot(); return s.LingerHits+s.LingerReady+s.LingerMisses == 1 }
			eventually(t, "the wait to be counted", ok)
		})
	}
}
