package encap_test

import (
	"testing"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

const benchPacket = 1400

func BenchmarkVXLANEncap(b *testing.B) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, benchPacket-20))
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	v := encap.NewVXLAN(1, macA)
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	for b.Loop() {
		if _, r := v.Encap(buf, encap.Headroom, len(pkt), macB); r != drop.OK {
			b.Fatal(r)
		}
	}
}

func BenchmarkVXLANDecap(b *testing.B) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, benchPacket-20))
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	frame, _ := encap.NewVXLAN(1, macA).Encap(buf, encap.Headroom, len(pkt), macB)
	v := encap.NewVXLAN(1, macB)
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	for b.Loop() {
		if _, r := v.Decap(frame); r != drop.OK {
			b.Fatal(r)
		}
	}
}

func BenchmarkUDPEncap(b *testing.B) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, benchPacket-20))
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	u := encap.NewUDP(1472)
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	for b.Loop() {
		buf[encap.Headroom+8] = 64 // TTL back up; the patch runs every time
		if _, r := u.Encap(buf, encap.Headroom, len(pkt), macB); r != drop.OK {
			b.Fatal(r)
		}
	}
}

func BenchmarkUDPDecap(b *testing.B) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, benchPacket-20))
	u := encap.NewUDP(1472)
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	for b.Loop() {
		pkt[8] = 64
		if _, r := u.Decap(pkt); r != drop.OK {
			b.Fatal(r)
		}
	}
}

func BenchmarkInnerDst(b *testing.B) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 6, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := encap.InnerDst(pkt); !ok {
			b.Fatal("not ok")
		}
	}
}
