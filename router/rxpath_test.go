package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/netns/netnstest"
	"github.com/feltnet/felt/tun"
)

// rxBed is the receive path with real parts, in a throwaway namespace: a
// peer's encap.Conn (127.0.0.2, GSO on) sends framed datagrams to the
// engine's encap.Conn (127.0.0.1, GRO on), the engine writes the inner
// packets into a real TUN, and the kernel delivers them to the UDP sockets
// sinks[k] (encap.Conns on the TUN's address, so a datagram train costs
// the reader few syscalls).
type rxBed struct {
	peer   *encap.Conn
	to     netip.AddrPort // the engine's Conn
	sinks  [2]*encap.Conn
	eng    *Engine
	frames [][]byte // the framed datagrams of one batch
	want   [2][][]byte
	addrs  []netip.AddrPort
	// the sinks' read buffers
	bufs  [][]byte
	sizes []int
	from  []netip.AddrPort
	guard *time.Timer // closes the sinks when a round waits too long
}

// newRxBed builds the bed for framing f and one batch of groups*perGroup
// inner UDP datagrams of size payload bytes, 10.5.2.9 -> 10.5.1.0, the
// groups alternating between the two sinks: one GSO send, one GRO train,
// and on the TUN one coalesced run per group.
func newRxBed(tb testing.TB, f framing, groups, perGroup, size int) *rxBed {
	tb.Helper()
	netnstest.Enter(tb)
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		tb.Fatalf("loopback up: %v", err)
	}
	dev, err := tun.CreateWith("frx0", 1500, tun.DefaultOptions())
	if err != nil {
		tb.Fatalf("tun: %v", err)
	}
	if _, err := tun.Configure("frx0", tun.NetConfig{Addr: netip.MustParsePrefix("10.5.1.0/32"),
		Routes: []netip.Prefix{netip.MustParsePrefix("10.5.0.0/16")}}); err != nil {
		dev.Close()
		tb.Fatalf("configure tun: %v", err)
	}
	conn, err := encap.Listen(netip.MustParseAddrPort("127.0.0.1:0"), encap.DefaultOptions())
	if err != nil {
		dev.Close()
		tb.Fatalf("listen: %v", err)
	}
	bed := &rxBed{to: conn.LocalAddr()}
	localMAC, peerMAC := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	bed.eng, err = New(Config{Device: dev, Conn: conn, Framer: newFramer(f, localMAC), Network: testNetwork,
		SubnetLen: 24, Local: netip.MustParsePrefix("10.5.1.0/24")}, zap.NewNop())
	if err != nil {
		dev.Close()
		conn.Close()
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bed.eng.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	bed.peer = listenRx(tb, "127.0.0.2:0")
	bed.eng.SetPeers([]Peer{{Subnet: netip.MustParsePrefix("10.5.2.0/24"), Addr: bed.peer.LocalAddr(), MAC: peerMAC}})
	for k := range bed.sinks {
		bed.sinks[k] = listenRx(tb, "10.5.1.0:0")
	}
	peerFr := newFramer(f, peerMAC)
	for i := range groups * perGroup {
		k := (i / perGroup) % 2
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(i*7 + j)
		}
		bed.want[k] = append(bed.want[k], payload)
		pkt := udp4("10.5.2.9", 40000, "10.5.1.0", bed.sinks[k].LocalAddr().Port(), payload)
		buf := append(make([]byte, encap.Headroom), pkt...)
		frame, r := peerFr.Encap(buf, encap.Headroom, len(pkt), localMAC)
		if r != drop.OK {
			tb.Fatalf("framing: %v", r)
		}
		bed.frames = append(bed.frames, frame)
		bed.addrs = append(bed.addrs, bed.to)
	}
	bed.guard = time.AfterFunc(time.Hour, func() {
		for _, s := range bed.sinks {
			s.Close()
		}
	})
	tb.Cleanup(func() { bed.guard.Stop() })
	n := bed.sinks[0].BatchSize()
	bed.bufs, bed.sizes, bed.from = make([][]byte, n), make([]int, n), make([]netip.AddrPort, n)
	for i := range bed.bufs {
		bed.bufs[i] = make([]byte, encap.MaxDatagram)
	}
	return bed
}

func listenRx(tb testing.TB, addr string) *encap.Conn {
	tb.Helper()
	c, err := encap.Listen(netip.MustParseAddrPort(addr), encap.DefaultOptions())
	if err != nil {
		tb.Fatalf("listen %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// udp4 is an IPv4 UDP datagram with its checksums filled in.
func udp4(src string, sport uint16, dst string, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	pseudo := append(append(append([]byte{}, p[12:20]...), 0, 17), p[24:26]...)
	sum := checksum(append(pseudo, p[20:]...))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(p[26:], sum)
	return p
}

// round sends one batch and reads every datagram from the sinks; check
// compares them with what was sent. A datagram lost on the way ends the
// wait after lossGuard with an error instead of a hang.
func (bed *rxBed) round(check bool) error {
	if err := bed.peer.WriteBatch(bed.frames, bed.addrs); err != nil {
		return err
	}
	bed.guard.Reset(rxLossGuard)
	defer bed.guard.Reset(time.Hour)
	for k, s := range bed.sinks {
		for got := 0; got < len(bed.want[k]); {
			n, err := s.ReadBatch(bed.bufs, bed.sizes, bed.from, 0)
			if err != nil {
				return fmt.Errorf("sink %d: %d of %d datagrams, then %v (engine: %+v)", k, got, len(bed.want[k]), err, bed.eng.Stats().Snapshot())
			}
			for i := range n {
				if check && !bytes.Equal(bed.bufs[i][:bed.sizes[i]], bed.want[k][got+i]) {
					return fmt.Errorf("sink %d datagram %d differs:\n got %x\nwant %x", k, got+i, bed.bufs[i][:bed.sizes[i]], bed.want[k][got+i])
				}
			}
			got += n
		}
	}
	return nil
}

// rxLossGuard turns a lost datagram into a failure instead of a hang.
const rxLossGuard = 20 * time.Second

// TestReceiveTrainIntoTUN: the datagrams of one GRO train, handed out by
// the real Conn and unframed in place, go into a real TUN as coalesced runs
// (groups alternating between two flows, so runs start right behind the
// previous run's last packet; with the udp framing the inner packets lie
// back to back in the Conn's memory) and both sockets behind the TUN
// receive every byte intact, in order.
func TestReceiveTrainIntoTUN(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			bed := newRxBed(t, f, 6, 8, 1000)
			const rounds = 3
			for range rounds {
				if err := bed.round(true); err != nil {
					t.Fatal(err)
				}
			}
			// The loop counts a batch after its Write returns, which may be
			// after the sinks have read it.
			want := uint64(rounds * len(bed.frames))
			s := bed.eng.Stats().Snapshot()
			for deadline := time.Now().Add(rxLossGuard); s.InPackets < want && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
				s = bed.eng.Stats().Snapshot()
			}
			if link, err := netlink.LinkByName("frx0"); err == nil {
				t.Logf("%d packets went into the TUN as %d frames", s.InPackets, link.Attrs().Statistics.RxPackets)
			}
			if s.InPackets != want {
				t.Errorf("engine wrote %d packets into the TUN, want %d", s.InPackets, want)
			}
			// The TUN's own packets (IPv6 router solicitations) go out with
			// no route; nothing inbound may be dropped.
			for r := drop.Reason(0); r < drop.NumReasons; r++ {
				if r != drop.NoRoute && s.Dropped(r) != 0 {
					t.Errorf("engine dropped %d packets as %s", s.Dropped(r), r)
				}
			}
		})
	}
}

// BenchmarkReceivePath: a GRO train in (64 framed datagrams of 1400-byte
// inner packets, one GSO send from the peer), through the engine's inbound
// loop into a real TUN as coalesced writes, out of the kernel to two UDP
// sockets; one batch in flight. Bytes are the inner packets' payloads.
// cpu-ns/B is the process's user+system CPU time per byte, which counts
// the sender's and the sinks' work too (the same in every version).
func BenchmarkReceivePath(b *testing.B) {
	for _, f := range framings() {
		b.Run(string(f), func(b *testing.B) {
			const groups, perGroup, size = 2, 32, 1372
			bed := newRxBed(b, f, groups, perGroup, size)
			if err := bed.round(true); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(groups * perGroup * size)
			b.ReportAllocs()
			before := cpuTime()
			for b.Loop() {
				if err := bed.round(false); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime() - before
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*groups*perGroup*size), "cpu-ns/B")
		})
	}
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
