package tun

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// craftTCP builds an IPv4 TCP packet 10.5.9.9:40000 → 10.5.3.0:port. With
// partial, the checksum holds only the pseudo-header sum, as a kernel vxlan
// peer sends it over a virtual underlay.
func craftTCP(t *testing.T, port uint16, seq, ack uint32, syn, psh bool, payload []byte, partial bool) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IPv4(10, 5, 9, 9), DstIP: net.IPv4(10, 5, 3, 0)}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(port), Seq: seq, Ack: ack, SYN: syn, ACK: !syn, PSH: psh, Window: 65535}
	tcp.SetNetworkLayerForChecksum(ip)
	pkt := serialize(t, ip, tcp, gopacket.Payload(payload))
	if partial {
		binary.BigEndian.PutUint16(pkt[36:], csumFold(pseudoSum(pkt[12:16], pkt[16:20], 6, len(pkt)-20)))
	}
	return pkt
}

// serialize is the packet of ls, lengths and checksums filled in, in a
// buffer of its own.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// readSynAck reads dev (up to 20 reads) until the kernel's SYN-ACK comes
// out, and returns its TCP header; the test fails if none does (the kernel
// dropped our SYN: a checksum not accepted?).
func readSynAck(t *testing.T, dev *Device, bufs [][]byte, sizes []int) *layers.TCP {
	t.Helper()
	for tries := 0; tries < 20; tries++ {
		n, err := dev.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			p := gopacket.NewPacket(bufs[i][headroom:headroom+sizes[i]], layers.LayerTypeIPv4, gopacket.Default)
			if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && tcp.SYN && tcp.ACK {
				return tcp
			}
		}
	}
	t.Fatal("no SYN-ACK: the kernel dropped our SYN (checksum not accepted?)")
	return nil
}

// tcpRun is segs in-order TCP segments of mss zero bytes, port 40000 to
// port, complete checksums.
func tcpRun(t *testing.T, port uint16, segs, mss int) [][]byte {
	var pkts [][]byte
	for i := 0; i < segs; i++ {
		pkts = append(pkts, craftTCP(t, port, uint32(1+i*mss), 1, false, false, make([]byte, mss), false))
	}
	return pkts
}

func headroomed(pkts ...[]byte) [][]byte {
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = append(make([]byte, headroom), p...)
	}
	return out
}

// TestWriteCoalescesTCP: a TCP handshake and 40 data segments,
// all with unfinished (partial) checksums, written through Device.Write:
// the kernel accepts them, the 40 segments go in as few super-packets, and
// the application reads every byte in order.
func TestWriteCoalescesTCP(t *testing.T) {
	b, name := batchedT(t, "w")
	ln, err := net.Listen("tcp4", "10.5.3.0:5000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()

	bufs, sizes := readBufs(b.BatchSize())
	if _, err := b.Write(headroomed(craftTCP(t, 5000, 1000, 0, true, false, nil, true)), headroom); err != nil {
		t.Fatal(err)
	}
	sa := readSynAck(t, b, bufs, sizes)
	seq, ack := uint32(1001), sa.Seq+1

	const segs, mss = 40, 1000
	var want []byte
	var pkts [][]byte
	pkts = append(pkts, craftTCP(t, 5000, seq, ack, false, false, nil, true)) // the handshake's ACK
	for i := 0; i < segs; i++ {
		payload := bytes.Repeat([]byte{byte('a' + i%26)}, mss)
		want = append(want, payload...)
		pkts = append(pkts, craftTCP(t, 5000, seq, ack, false, i == segs-1, payload, true))
		seq += mss
	}
	rxBefore := rxPackets(t, name)
	n, err := b.Write(headroomed(pkts...), headroom)
	if err != nil || n != len(pkts) {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(pkts))
	}
	// The ACK alone, then the 40 segments as one super-packet.
	if d := rxPackets(t, name) - rxBefore; d != 2 {
		t.Fatalf("the kernel received %d packets for the ACK and %d segments, want 2 (coalesced)", d, segs)
	}
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("handshake not completed")
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
}

func rxPackets(t *testing.T, name string) uint64 {
	t.Helper()
	return mustLink(t, name).Attrs().Statistics.RxPackets
}

func TestCoalesceRules(t *testing.T) {
	tt := &testing.T{}
	base := craftTCP(tt, 80, 100, 5, false, false, make([]byte, 500), false)
	a := inspect(base)
	next := craftTCP(tt, 80, 600, 5, false, false, make([]byte, 500), false)
	if !canAppend(base, a, next, inspect(next), 600, 500) {
		t.Fatal("the next in-order segment must coalesce")
	}
	for name, q := range map[string][]byte{
		"gap":        craftTCP(tt, 80, 700, 5, false, false, make([]byte, 500), false),
		"other port": craftTCP(tt, 81, 600, 5, false, false, make([]byte, 500), false),
		"other ack":  craftTCP(tt, 80, 600, 6, false, false, make([]byte, 500), false),
		"longer":     craftTCP(tt, 80, 600, 5, false, false, make([]byte, 600), false),
		"empty":      craftTCP(tt, 80, 600, 5, false, false, nil, false),
		"syn":        craftTCP(tt, 80, 600, 5, true, false, make([]byte, 500), false),
	} {
		if canAppend(base, a, q, inspect(q), 600, 500) {
			t.Errorf("%s: must not coalesce", name)
		}
	}
}

func TestWriteAllocs(t *testing.T) {
	b, _ := batchedT(t, "x")
	var pkts [][]byte
	for i := 0; i < 32; i++ {
		pkts = append(pkts, craftTCP(t, 5001, uint32(100+i*1000), 1, false, false, make([]byte, 1000), false))
	}
	bufs := headroomed(pkts...)
	orig := headroomed(pkts...)
	if a := testing.AllocsPerRun(20, func() {
		for i := range bufs {
			copy(bufs[i], orig[i])
		}
		b.Write(bufs, headroom)
	}); a != 0 {
		t.Fatalf("Write allocates %v per batch", a)
	}
}

func TestReadAllocs(t *testing.T) {
	b, _ := batchedT(t, "r")
	conn := dialUDP(t, "10.5.9.9:4000")
	bufs, sizes := readBufs(b.BatchSize())
	msg := []byte("x")
	if a := testing.AllocsPerRun(50, func() {
		conn.Write(msg)
		b.Read(bufs, sizes, headroom)
	}); a != 0 {
		t.Fatalf("Read allocates %v per batch", a)
	}
}

// TestWriteCoalescesUDP: 40 datagrams of one flow with partial
// checksums go in as one USO super-packet and come out of the socket as 40
// datagrams, in order.
func TestWriteCoalescesUDP(t *testing.T) {
	b, name := batchedT(t, "u")
	if !b.uso {
		t.Skip("this kernel's TUN takes no UDP segmentation offload (Linux 6.2+)")
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0), Port: 5002})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pkts [][]byte
	for i := 0; i < 40; i++ {
		payload := bytes.Repeat([]byte{byte(i)}, 64)
		if i == 39 {
			payload = payload[:10] // a shorter last one ends the run
		}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 5, 9, 9), DstIP: net.IPv4(10, 5, 3, 0)}
		udp := &layers.UDP{SrcPort: 40000, DstPort: 5002}
		udp.SetNetworkLayerForChecksum(ip)
		pkts = append(pkts, serialize(t, ip, udp, gopacket.Payload(payload)))
	}
	before := rxPackets(t, name)
	if n, err := b.Write(headroomed(pkts...), headroom); err != nil || n != 40 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if d := rxPackets(t, name) - before; d != 1 {
		t.Fatalf("the kernel received %d packets for 40 datagrams of one flow, want 1 (coalesced)", d)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 2000)
	for i := 0; i < 40; i++ {
		n, err := conn.Read(got)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		want := 64
		if i == 39 {
			want = 10
		}
		if n != want || got[0] != byte(i) || got[n-1] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes of %d", i, n, got[0], want, i)
		}
	}
}

// BenchmarkCoalesceTCP measures what Write does to a batch of 44 in-order
// segments of one flow before its writev: inspect each, chain them, rewrite
// the head. The syscall is left out; bytes are the payload carried.
func BenchmarkCoalesceTCP(b *testing.B) {
	t := &testing.T{}
	const segs, mss = 44, 1398
	pkts := tcpRun(t, 5000, segs, mss)
	head := append([]byte(nil), pkts[0][:60]...)
	info := make([]l4Info, segs)
	vh := make([]byte, VirtioHdrLen)
	b.SetBytes(segs * mss)
	b.ReportAllocs()
	for b.Loop() {
		copy(pkts[0], head)
		for i, p := range pkts {
			info[i] = inspect(p)
		}
		a := info[0]
		next, total := a.seq+uint32(a.payload), a.payload
		n := 1
		for j := 1; j < segs && canAppend(pkts[0], a, pkts[j], info[j], next, total); j++ {
			next += uint32(info[j].payload)
			total += info[j].payload
			n++
		}
		if n != segs {
			b.Fatalf("coalesced %d of %d", n, segs)
		}
		mergeTCPHead(pkts[0], a, total, a.payload, false, vh)
	}
}

// TestCoalesceLengthLimit: a run may not grow past what the merged packet's
// 16-bit IP length can say, headers included (46 × 1398 + 1200 payload bytes
// fit 65535 alone, not with 40 header bytes).
func TestCoalesceLengthLimit(t *testing.T) {
	tt := &testing.T{}
	base := craftTCP(tt, 80, 1, 5, false, false, make([]byte, 1398), false)
	a := inspect(base)
	total, next := 46*1398, uint32(1+46*1398)
	tail := craftTCP(tt, 80, next, 5, false, false, make([]byte, 1200), false)
	if canAppend(base, a, tail, inspect(tail), next, total) {
		t.Fatalf("a run of %d payload bytes + %d of headers was allowed to exceed 65535", total+1200, a.hdrLen)
	}
	small := craftTCP(tt, 80, next, 5, false, false, make([]byte, 1100), false)
	if !canAppend(base, a, small, inspect(small), next, total) {
		t.Fatal("a segment that still fits was refused")
	}
}

// TestReadAfterCloseFails: once the device is closed, Read reports it and
// does not hand out the previous batch again.
func TestReadAfterCloseFails(t *testing.T) {
	b, _ := batchedT(t, "c")
	conn := dialUDP(t, "10.5.9.9:4000")
	conn.Write([]byte("x"))
	bufs, sizes := readBufs(b.BatchSize())
	if n, err := b.Read(bufs, sizes, headroom); n == 0 || err != nil {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	b.Close()
	for i := 0; i < 3; i++ {
		if n, err := b.Read(bufs, sizes, headroom); n != 0 || err == nil {
			t.Fatalf("Read after Close = %d, %v; want 0 and an error", n, err)
		}
	}
}
