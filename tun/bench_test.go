package tun

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// udpBatch builds n copies of one UDP/IPv4 datagram 10.5.9.9:5555 ->
// 10.5.3.0:port, each in its own buffer with headroom before it.
func udpBatch(t testing.TB, n, port, payload int) [][]byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 5, 9, 9).To4(), DstIP: net.IPv4(10, 5, 3, 0).To4()}
	udp := &layers.UDP{SrcPort: 5555, DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ip)
	pkt := serialize(t, ip, udp, gopacket.Payload(make([]byte, payload)))
	bufs := make([][]byte, n)
	for i := range bufs {
		b := make([]byte, headroom+65535)
		bufs[i] = b[:headroom+copy(b[headroom:], pkt)]
	}
	return bufs
}

// TestWriteBatchAllocs guards the packet path below felt: writing a batch
// into the TUN must not allocate per call.
func TestWriteBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	inThrowawayNetns(t)
	dev, _ := configured(t, "a")
	bufs := udpBatch(t, dev.BatchSize(), sink(t), 1200)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := dev.Write(bufs, headroom); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Write of a %d-packet batch allocates %.1f times per call, want 0", len(bufs), allocs)
	}
}

func BenchmarkWriteUDPBatch(b *testing.B) {
	inThrowawayNetns(b)
	dev, _ := configured(b, "z")
	bufs := udpBatch(b, dev.BatchSize(), sink(b), 1200)
	b.SetBytes(int64(len(bufs) * (len(bufs[0]) - headroom)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dev.Write(bufs, headroom); err != nil {
			b.Fatal(err)
		}
	}
}

// sink binds a UDP socket on the TUN's address that is never read: the
// kernel delivers to it and drops what overflows, with no ICMP replies.
func sink(t testing.TB) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).Port
}

// BenchmarkInspectTCP: parsing and verifying the checksums of 44 segments of
// 1398 payload bytes, the per-packet pass Write makes before coalescing;
// bytes are the packets' bytes.
func BenchmarkInspectTCP(b *testing.B) {
	t := &testing.T{}
	const segs, mss = 44, 1398
	pkts := tcpRun(t, 5000, segs, mss)
	var sink int
	b.SetBytes(int64(segs * len(pkts[0])))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pkts {
			sink += inspect(p).payload
		}
	}
	_ = sink
}

// BenchmarkWriteTCPRun: the whole Write path into a real TUN for 44 in-order
// segments of one flow (they coalesce into one super-packet); each round
// first restores the packets, which Write rewrites. Nobody listens, so the
// kernel drops the data after the TUN.
func BenchmarkWriteTCPRun(b *testing.B) {
	inThrowawayNetns(b)
	dev, _ := configured(b, "y")
	t := &testing.T{}
	const segs, mss = 44, 1398
	var pkts [][]byte
	for i := 0; i < segs; i++ {
		pkts = append(pkts, craftTCP(t, 5999, uint32(1+i*mss), 1, false, false, make([]byte, mss), false))
	}
	bufs, orig := headroomed(pkts...), headroomed(pkts...)
	b.SetBytes(segs * mss)
	b.ReportAllocs()
	for b.Loop() {
		for i := range bufs {
			copy(bufs[i], orig[i])
		}
		if _, err := dev.Write(bufs, headroom); err != nil {
			b.Fatal(err)
		}
	}
}
