package tun

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/feltnet/felt/encap/encaptest"
)

// naiveSum is the one's complement sum of b, RFC 1071 word by word (the
// Internet checksum before its final complement): the reference for
// csumAdd/csumFold.
func naiveSum(b []byte) uint16 { return ^encaptest.Checksum(b) }

func TestCsumMatchesRFC1071(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// Every length through a few 128-byte rounds and each tail, then
	// segment- and super-packet-sized ones.
	lengths := []int{1448, 1449, 9000, 65535}
	for n := 599; n >= 0; n-- {
		lengths = append([]int{n}, lengths...)
	}
	for _, n := range lengths {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if n%7 == 0 {
			for i := range b {
				b[i] = 0xff // carries everywhere
			}
		}
		if got, want := csumFold(csumAdd(0, b)), naiveSum(b); got != want {
			t.Fatalf("len %d: csum %#04x, want %#04x", n, got, want)
		}
	}
}

// superPacket builds a TCP or UDP super-packet of payload bytes with the
// virtio header the kernel would give for it.
func superPacket(t *testing.T, v6, tcp bool, payload []byte, mss int) ([]byte, virtioHdr) {
	t.Helper()
	var ip gopacket.NetworkLayer
	var ipl gopacket.SerializableLayer
	proto := layers.IPProtocolUDP
	if tcp {
		proto = layers.IPProtocolTCP
	}
	if v6 {
		l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, DstIP: []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}}
		ip, ipl = l, l
	} else {
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0xfffe, Flags: layers.IPv4DontFragment, Protocol: proto,
			SrcIP: []byte{10, 5, 1, 0}, DstIP: []byte{10, 5, 2, 7}}
		ip, ipl = l, l
	}
	var l4 gopacket.SerializableLayer
	if tcp {
		tl := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 0xfffff000, Ack: 77, ACK: true, PSH: true, FIN: true, CWR: true, Window: 512,
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}}
		tl.SetNetworkLayerForChecksum(ip)
		l4 = tl
	} else {
		ul := &layers.UDP{SrcPort: 40000, DstPort: 5201}
		ul.SetNetworkLayerForChecksum(ip)
		l4 = ul
	}
	pkt := serialize(t, ipl, l4, gopacket.Payload(payload))
	h := virtioHdr{flags: virtioNeedsCsum, gsoSize: uint16(mss)}
	if v6 {
		h.csumStart = 40
	} else {
		h.csumStart = 20
	}
	switch {
	case tcp && v6:
		h.gsoType, h.csumOffset = gsoTCPv6, 16
	case tcp:
		h.gsoType, h.csumOffset = gsoTCPv4, 16
	default:
		h.gsoType, h.csumOffset = gsoUDPL4, 6
	}
	return pkt, h
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		v6, tcp      bool
		payload, mss int
		wantSegments int
	}{
		{"tcp4", false, true, 64000, 1398, 46},
		{"tcp4 exact", false, true, 1398 * 3, 1398, 3},
		{"tcp6", true, true, 50000, 1378, 37},
		{"udp4", false, false, 64 * 20, 64, 20},
		{"udp6 short tail", true, false, 1000, 300, 4},
		{"tcp4 odd tail", false, true, 4001, 1000, 5},
		{"udp4 odd mss", false, false, 2997, 999, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := make([]byte, tc.payload)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			pkt, h := superPacket(t, tc.v6, tc.tcp, payload, tc.mss)
			orig := append([]byte(nil), pkt...)
			const off = 32
			bufs := make([][]byte, 64)
			for i := range bufs {
				bufs[i] = make([]byte, off+65535)
			}
			sizes := make([]int, 64)
			n, err := split(pkt, h, bufs, sizes, off, make([]byte, 256))
			if err != nil || n != tc.wantSegments {
				t.Fatalf("split = %d, %v; want %d segments", n, err, tc.wantSegments)
			}
			var got []byte
			for j := 0; j < n; j++ {
				seg := bufs[j][off : off+sizes[j]]
				if j == 0 {
					seg = pkt[:sizes[0]]
				}
				first := layers.LayerTypeIPv4
				if tc.v6 {
					first = layers.LayerTypeIPv6
				}
				p := gopacket.NewPacket(seg, first, gopacket.Default)
				if p.ErrorLayer() != nil {
					t.Fatalf("segment %d: %v", j, p.ErrorLayer().Error())
				}
				if ip4, ok := p.NetworkLayer().(*layers.IPv4); ok {
					if int(ip4.Length) != len(seg) || ip4.Id != 0xfffe+uint16(j) || naiveSum(seg[:20]) != 0xffff {
						t.Fatalf("segment %d: IPv4 length %d id %#x header sum %#x", j, ip4.Length, ip4.Id, naiveSum(seg[:20]))
					}
				}
				l4 := int(h.csumStart)
				var src, dst []byte
				if tc.v6 {
					src, dst = seg[8:24], seg[24:40]
				} else {
					src, dst = seg[12:16], seg[16:20]
				}
				proto := byte(17)
				if tc.tcp {
					proto = 6
				}
				ph := append(append(append([]byte{}, src...), dst...), 0, proto, byte((len(seg)-l4)>>8), byte(len(seg)-l4))
				if s := naiveSum(append(ph, seg[l4:]...)); s != 0xffff {
					t.Fatalf("segment %d: L4 checksum does not verify (sum %#x)", j, s)
				}
				if tc.tcp {
					tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
					if tcp.Seq != 0xfffff000+uint32(j*tc.mss) {
						t.Fatalf("segment %d: seq %#x", j, tcp.Seq)
					}
					last := j == n-1
					if tcp.FIN != last || tcp.PSH != last || tcp.CWR != (j == 0) || !tcp.ACK {
						t.Fatalf("segment %d: flags FIN %v PSH %v CWR %v", j, tcp.FIN, tcp.PSH, tcp.CWR)
					}
					got = append(got, tcp.Payload...)
				} else {
					udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
					if int(udp.Length) != len(seg)-l4 {
						t.Fatalf("segment %d: UDP length %d", j, udp.Length)
					}
					got = append(got, udp.Payload...)
				}
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("segments' payloads do not add up to the super-packet's")
			}
			_ = orig
		})
	}
}

func TestSplitRejectsMalformed(t *testing.T) {
	pkt, h := superPacket(t, false, true, make([]byte, 3000), 1000)
	bufs := [][]byte{make([]byte, 70000), make([]byte, 70000), make([]byte, 70000)}
	sizes := make([]int, 3)
	for _, bad := range []func(*virtioHdr, []byte) []byte{
		func(h *virtioHdr, p []byte) []byte { h.gsoSize = 0; return p },
		func(h *virtioHdr, p []byte) []byte { h.csumStart = 9000; return p },
		func(h *virtioHdr, p []byte) []byte { h.gsoType = 9; return p },
		func(h *virtioHdr, p []byte) []byte { return p[:30] },
		func(h *virtioHdr, p []byte) []byte { h.gsoSize = 100; return p }, // 30 segments, 3 buffers
	} {
		hh := h
		p := bad(&hh, append([]byte(nil), pkt...))
		if _, err := split(p, hh, bufs, sizes, 0, make([]byte, 256)); err == nil {
			t.Errorf("split accepted a malformed packet (hdr %+v, %d bytes)", hh, len(p))
		}
	}
}

func TestFinishCsum(t *testing.T) {
	pkt, _ := superPacket(t, false, false, []byte("hello, partial checksum"), 1000)
	want := binary.BigEndian.Uint16(pkt[26:])
	// What the kernel hands over: the field holds the pseudo-header sum.
	l4len := len(pkt) - 20
	binary.BigEndian.PutUint16(pkt[26:], csumFold(pseudoSum(pkt[12:16], pkt[16:20], 17, l4len)))
	if err := finishCsum(pkt, virtioHdr{flags: virtioNeedsCsum, csumStart: 20, csumOffset: 6}); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(pkt[26:]); got != want {
		t.Fatalf("checksum %#04x, want %#04x", got, want)
	}
}

// splitBufs is room for split's output: 64 segments of up to 64 KiB after
// 32 bytes of headroom, their sizes, and its scratch.
func splitBufs() (bufs [][]byte, sizes []int, scratch []byte) {
	bufs = make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 32+65535)
	}
	return bufs, make([]int, 64), make([]byte, 256)
}

func TestSplitAllocs(t *testing.T) {
	pkt, h := superPacket(t, false, true, make([]byte, 60000), 1398)
	bufs, sizes, scratch := splitBufs()
	work := append([]byte(nil), pkt...)
	if a := testing.AllocsPerRun(50, func() {
		copy(work, pkt)
		split(work, h, bufs, sizes, 32, scratch)
	}); a != 0 {
		t.Fatalf("split allocates %v per super-packet", a)
	}
}

func BenchmarkSplitTCP64K(b *testing.B) {
	t := &testing.T{}
	pkt, h := superPacket(t, false, true, make([]byte, 64000), 1398)
	bufs, sizes, scratch := splitBufs()
	work := append([]byte(nil), pkt...)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		copy(work[:60], pkt[:60])
		split(work, h, bufs, sizes, 32, scratch)
	}
}

// TestFinishCsumUDPZero: a UDP checksum that comes out as 0 is sent as
// 0xffff (0 means "none", and IPv6 receivers drop it).
func TestFinishCsumUDPZero(t *testing.T) {
	// Search a 2-byte payload whose IPv6 UDP checksum folds to 0.
	for p := 0; p < 1<<16; p++ {
		pkt, _ := superPacket(t, true, false, []byte{byte(p >> 8), byte(p)}, 1000)
		l4len := len(pkt) - 40
		binary.BigEndian.PutUint16(pkt[46:], csumFold(pseudoSum(pkt[8:24], pkt[24:40], 17, l4len)))
		if ^csumFold(csumAdd(0, pkt[40:])) != 0 {
			continue
		}
		if err := finishCsum(pkt, virtioHdr{flags: virtioNeedsCsum, csumStart: 40, csumOffset: 6}); err != nil {
			t.Fatal(err)
		}
		if got := binary.BigEndian.Uint16(pkt[46:]); got != 0xffff {
			t.Fatalf("payload %#04x: checksum field %#04x, want 0xffff", p, got)
		}
		return
	}
	t.Fatal("no payload gives a zero checksum")
}

// TestParkAndDrain: a super-packet with more segments than the caller has
// buffers is parked and handed out across calls, in order and whole, in
// buffers sized to the segments.
func TestParkAndDrain(t *testing.T) {
	payload := make([]byte, 20000)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	pkt, h := superPacket(t, false, true, payload, 100) // 200 segments
	var p parked
	const off = 32
	p.park(pkt, h, 200, off, make([]byte, 256))
	if p.left != 200 || len(p.back) > 200*(off+60+100) {
		t.Fatalf("parked %d segments in %d bytes", p.left, len(p.back))
	}
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, off+65535)
	}
	sizes := make([]int, 64)
	var got []byte
	for calls := 0; p.left > 0 && calls < 10; calls++ {
		n := p.drain(bufs, sizes, off)
		for i := 0; i < n; i++ {
			seg := bufs[i][off : off+sizes[i]]
			got = append(got, seg[20+int(seg[32]>>4)*4:]...)
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("drained %d payload bytes, want the %d parked, in order", len(got), len(payload))
	}
}

// BenchmarkCsumAdd sums a 64 KiB super-packet's worth and one MSS-sized
// segment's payload (1,448 bytes: the 128-byte rounds, then the tails).
func BenchmarkCsumAdd(b *testing.B) {
	for _, n := range []int{65536, 1448} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var acc uint64
			for b.Loop() {
				acc += csumAdd(0, buf)
			}
			csumSink = acc
		})
	}
}

var csumSink uint64
