package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

// want is what the receiving TUN should get for p: flanneld's udp framing
// decrements the TTL on send and on receive; vxlan leaves the packet alone.
func want(f framing, p []byte) []byte {
	w := bytes.Clone(p)
	if f == udpFraming {
		w[8] -= 2
		binary.BigEndian.PutUint16(w[10:], ipChecksum(w[:20]))
	}
	return w
}

func TestExchangeBothDirections(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := mesh(t, f, 2)
			a, b := h[0], h[1]
			for _, dir := range [][2]*host{{a, b}, {b, a}} {
				from, to := dir[0], dir[1]
				var sent [][]byte
				for i, size := range []int{20 + 8, 100, 1400, udpMTU} {
					sent = append(sent, ipv4(from.ip(7), to.ip(9), 64, uint32(i), size))
				}
				if err := from.dev.Inject(sent...); err != nil {
					t.Fatal(err)
				}
				for _, p := range sent {
					got := to.recv(t)
					if w := want(f, p); !bytes.Equal(got, w) {
						t.Fatalf("%s→%s: packet %d differs:\n got %x\nwant %x", from.name, to.name, seqOf(p), got, w)
					}
				}
			}
			// counters are added after the hand-off, so wait for them
			eventually(t, "4 packets counted each way", func() bool {
				sa, sb := a.eng.Stats().Snapshot(), b.eng.Stats().Snapshot()
				return sa.OutPackets == 4 && sa.InPackets == 4 && sb.OutPackets == 4 && sb.InPackets == 4
			})
			sa, sb := a.eng.Stats().Snapshot(), b.eng.Stats().Snapshot()
			if sa.OutBytes != sb.InBytes || sb.OutBytes != sa.InBytes {
				t.Errorf("bytes: a out %d / b in %d, b out %d / a in %d: want equal", sa.OutBytes, sb.InBytes, sb.OutBytes, sa.InBytes)
			}
			if d := sa.TotalDropped() + sb.TotalDropped(); d != 0 {
				t.Errorf("%d drops, want none: a=%v b=%v", d, sa.Drops, sb.Drops)
			}
		})
	}
}

func TestIPv6ThroughVXLAN(t *testing.T) {
	// vxlan carries IPv6 too; a peer holding an IPv6 subnet is found by the
	// longest-prefix fallback. udp framing is IPv4 only (flannel's).
	nw := routertest.NewNetwork()
	a := newHost(t, nw, vxlanFraming, 1, 8)
	b6 := netip.MustParsePrefix("fd00:5:2::/64")
	b := newHostWith(t, nw, vxlanFraming, 2, 8, func(c *Config) { c.Local = b6 })
	a.eng.SetPeers([]Peer{{Subnet: b6, Addr: b.addr, MAC: b.mac}})
	b.eng.SetPeers([]Peer{{Subnet: netip.MustParsePrefix("fd00:5:1::/64"), Addr: a.addr, MAC: a.mac}})
	a.start(t)
	b.start(t)
	p := make([]byte, 40+16)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], 16)
	p[6], p[7] = 17, 64
	src, dst := netip.MustParseAddr("fd00:5:1::7").As16(), netip.MustParseAddr("fd00:5:2::9").As16()
	copy(p[8:], src[:])
	copy(p[24:], dst[:])
	copy(p[40:], "sixteen bytes!!!")
	if err := a.dev.Inject(p); err != nil {
		t.Fatal(err)
	}
	if got := b.recv(t); !bytes.Equal(got, p) {
		t.Fatalf("got %x, want %x", got, p)
	}
}

func TestOrderKeptPerPeerAndGrouped(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := mesh(t, f, 3)
			a, b, c := h[0], h[1], h[2]
			var mu sync.Mutex
			var badGroup string
			a.conn.OnWrite = func(_ [][]byte, addrs []netip.AddrPort) {
				// every destination must form one contiguous run
				seen := map[netip.AddrPort]bool{}
				for i, ad := range addrs {
					if i > 0 && addrs[i-1] == ad {
						continue
					}
					if seen[ad] {
						mu.Lock()
						badGroup = fmt.Sprint(addrs)
						mu.Unlock()
					}
					seen[ad] = true
				}
			}
			const batches, per = 8, 48
			seq := map[*host]uint32{}
			for range batches {
				var pkts [][]byte
				for i := range per {
					to := b
					if i%3 == 1 {
						to = c
					}
					pkts = append(pkts, ipv4(a.ip(5), to.ip(6), 64, seq[to], 200+i))
					seq[to]++
				}
				if err := a.dev.Inject(pkts...); err != nil {
					t.Fatal(err)
				}
			}
			for _, to := range []*host{b, c} {
				for i := uint32(0); i < seq[to]; i++ {
					if got := seqOf(to.recv(t)); got != i {
						t.Fatalf("host %s: got seq %d, want %d", to.name, got, i)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if badGroup != "" {
				t.Errorf("a WriteBatch interleaved peers: %s", badGroup)
			}
		})
	}
}

func TestSetPeersWhileRunning(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := mesh(t, f, 3)
			a, b, c := h[0], h[1], h[2]
			// a starts knowing only b; c knows a, so a's packets can reach it
			a.eng.SetPeers([]Peer{b.peer()})

			// churn a's table while traffic flows; -race checks the swap
			stop := make(chan struct{})
			churned := make(chan struct{})
			go func() {
				defer close(churned)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					peers := []Peer{b.peer()}
					if i%2 == 0 {
						peers = append(peers, Peer{Subnet: netip.MustParsePrefix("10.5.200.0/24"), Addr: netip.MustParseAddrPort("192.0.2.200:8472")})
					}
					a.eng.SetPeers(peers)
				}
			}()
			for i := range 200 {
				if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, uint32(i), 120)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 200 {
				if got := seqOf(b.recv(t)); got != uint32(i) {
					t.Fatalf("b got seq %d, want %d", got, i)
				}
			}
			close(stop)
			<-churned

			// a new peer becomes reachable
			a.eng.SetPeers([]Peer{b.peer(), c.peer()})
			if err := a.dev.Inject(ipv4(a.ip(1), c.ip(3), 64, 7, 120)); err != nil {
				t.Fatal(err)
			}
			if got := seqOf(c.recv(t)); got != 7 {
				t.Fatalf("c got seq %d, want 7", got)
			}
			// a removed peer is no longer routed to
			before := a.eng.Stats().Snapshot().Dropped(drop.NoRoute)
			a.eng.SetPeers([]Peer{c.peer()})
			if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, 8, 120), ipv4(a.ip(1), c.ip(3), 64, 9, 120)); err != nil {
				t.Fatal(err)
			}
			if got := seqOf(c.recv(t)); got != 9 {
				t.Fatalf("c got seq %d, want 9", got)
			}
			eventually(t, "NoRoute for the removed peer", func() bool {
				return a.eng.Stats().Snapshot().Dropped(drop.NoRoute) == before+1
			})
			// nor accepted as a sender
			if a.eng.Table().BySender(b.addr.Addr()) != nil {
				t.Error("removed peer still known as a sender")
			}
		})
	}
}

func TestRunStopsOnCancelAndCloseTwice(t *testing.T) {
	nw := routertest.NewNetwork()
	a := newHost(t, nw, vxlanFraming, 1, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.eng.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err := a.eng.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
	if err := a.eng.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := a.eng.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := a.dev.Read(make([][]byte, 1), make([]int, 1), 0); !errors.Is(err, net.ErrClosed) {
		t.Errorf("device still open after Close: %v", err)
	}
}

func TestRunReturnsFatalErrorAndStopsOtherLoop(t *testing.T) {
	nw := routertest.NewNetwork()
	a := newHost(t, nw, udpFraming, 1, 4)
	done := make(chan error, 1)
	go func() { done <- a.eng.Run(context.Background()) }()
	a.dev.Close() // the TUN goes away under the engine
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "outbound") {
			t.Fatalf("Run = %v, want the outbound loop's closed-device error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the device closed")
	}
	if err := a.conn.Deliver(a.addr, []byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("conn not closed when Run returned: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	nw := routertest.NewNetwork()
	conn, err := nw.Listen(netip.MustParseAddrPort("192.0.2.1:1"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	dev := routertest.NewDevice(1, 1)
	good := Config{Device: dev, Conn: conn, Framer: newFramer(udpFraming, [6]byte{}),
		Network: testNetwork, SubnetLen: 24, Local: netip.MustParsePrefix("10.5.1.0/24")}
	for _, tc := range []struct {
		field  string
		adjust func(*Config)
	}{
		{"Device", func(c *Config) { c.Device = nil }},
		{"Conn", func(c *Config) { c.Conn = nil }},
		{"Framer", func(c *Config) { c.Framer = nil }},
		{"Network", func(c *Config) { c.Network = netip.Prefix{} }},
		{"SubnetLen 8", func(c *Config) { c.SubnetLen = 8 }},
		{"SubnetLen 33", func(c *Config) { c.SubnetLen = 33 }},
		{"Local", func(c *Config) { c.Local = netip.Prefix{} }},
		{"LogEvery", func(c *Config) { c.LogEvery = -time.Second }},
		{"Linger -1µs", func(c *Config) { c.Linger = -time.Microsecond }},
		{"Linger 1.001ms", func(c *Config) { c.Linger = MaxLinger + time.Microsecond }},
		{"Queues[0].Device: must not be nil", func(c *Config) { c.Queues = []Queue{{Conn: c.Conn}} }},
		{"Queues[0].Conn: must not be nil", func(c *Config) { c.Queues = []Queue{{Device: c.Device}} }},
		{"Queues[0].Device batch size 0", func(c *Config) { c.Queues = []Queue{{Device: routertest.NewDevice(0, 8), Conn: c.Conn}} }},
	} {
		cfg := good
		tc.adjust(&cfg)
		_, err := New(cfg, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: New error = %v, want one naming %q", tc.field, err, tc.field)
		}
	}
	if _, err := New(good, nil); err != nil {
		t.Errorf("good config: %v", err)
	}
}

func TestWriteErrorsCountedAndLoopsGoOn(t *testing.T) {
	h := mesh(t, udpFraming, 2)
	a, b := h[0], h[1]
	boom := errors.New("boom")

	a.conn.FailWrites(boom)
	if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, 1, 100), ipv4(a.ip(1), b.ip(2), 64, 2, 100)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SendFailed", func() bool { return a.eng.Stats().Snapshot().Dropped(drop.SendFailed) == 1 })
	a.conn.FailWrites(nil)

	b.dev.FailWrites(errors.Join(boom, boom))
	if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, 3, 100), ipv4(a.ip(1), b.ip(2), 64, 4, 100)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "WriteFailed", func() bool { return b.eng.Stats().Snapshot().Dropped(drop.WriteFailed) == 2 })
	b.dev.FailWrites(nil)

	if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, 5, 100)); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(b.recv(t)); got != 5 {
		t.Fatalf("b got seq %d after the errors, want 5", got)
	}
}

func TestRepeatedReadErrorsAreFatal(t *testing.T) {
	nw := routertest.NewNetwork()
	a := newHost(t, nw, vxlanFraming, 1, 4)
	a.dev.FailReads(errors.New("flaky"))
	done := make(chan error, 1)
	go func() { done <- a.eng.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "flaky") || !strings.Contains(err.Error(), "in a row") {
			t.Fatalf("Run = %v, want the repeated read error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not give up on a device whose reads always fail")
	}
	if got := a.eng.Stats().Snapshot().ReadErrors; got != maxReadErrors-1 {
		t.Errorf("ReadErrors = %d, want %d", got, maxReadErrors-1)
	}
}

// A new framing (a new VtepMAC) takes effect while the engine runs, for
// both loops: b's inbound refuses frames to its old MAC and takes those to
// the new one; a's outbound frames with its new source MAC (here b's own,
// so b drops them as loop_mac). A framing that does not fit is refused.
func TestSetFramerWhileRunning(t *testing.T) {
	h := mesh(t, vxlanFraming, 2)
	a, b := h[0], h[1]
	send := func(seq uint32) {
		t.Helper()
		if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, seq, 120)); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	if got := seqOf(b.recv(t)); got != 1 {
		t.Fatalf("b got seq %d, want 1", got)
	}

	newMAC := [6]byte{2, 0, 0, 0, 0, 0x42}
	if err := b.eng.SetFramer(encap.NewVXLAN(1, newMAC)); err != nil {
		t.Fatal(err)
	}
	send(2) // a still frames to b's old MAC
	eventually(t, "not_for_us at b", func() bool { return b.eng.Stats().Snapshot().Dropped(drop.NotForUs) == 1 })
	moved := b.peer()
	moved.MAC = newMAC
	a.eng.SetPeers([]Peer{moved})
	send(3)
	if got := seqOf(b.recv(t)); got != 3 {
		t.Fatalf("b got seq %d, want 3", got)
	}

	if err := a.eng.SetFramer(encap.NewVXLAN(1, newMAC)); err != nil {
		t.Fatal(err)
	}
	send(4)
	eventually(t, "loop_mac at b", func() bool { return b.eng.Stats().Snapshot().Dropped(drop.LoopMAC) == 1 })

	if err := a.eng.SetFramer(nil); err == nil || !strings.Contains(err.Error(), "SetFramer") {
		t.Errorf("SetFramer(nil) = %v, want an error naming SetFramer", err)
	}
	if err := a.eng.SetFramer(bigFramer{a.framer}); err == nil || !strings.Contains(err.Error(), "overhead 1000") {
		t.Errorf("SetFramer(overhead 1000) = %v, want an error naming the overhead", err)
	}
}

// bigFramer is a Framer whose overhead does not fit the headroom.
type bigFramer struct{ Framer }

func (bigFramer) Overhead() int { return 1000 }
