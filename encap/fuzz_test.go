package encap_test

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

// within reports whether sub lies inside buf's bytes.
func within(sub, buf []byte) bool {
	if len(sub) == 0 {
		return true
	}
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

func FuzzVXLANDecap(f *testing.F) {
	v := encap.NewVXLAN(7, macB)
	for _, pkt := range [][]byte{
		encaptest.IPv4(srcA, dstB, 64, 6, []byte("seed")),
		encaptest.IPv6(src6, dst6, 64, 17, []byte("seed6")),
	} {
		buf := encaptest.Headroomed(22, pkt)
		frame, _ := encap.NewVXLAN(7, macA).Encap(buf, 22, len(pkt), macB)
		f.Add(frame)
	}
	f.Add(make([]byte, 42))
	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := string(frame)
		inner, r := v.Decap(frame)
		if string(frame) != orig {
			t.Fatal("Decap modified the frame")
		}
		if r >= drop.NumReasons || (r == drop.OK) == (inner == nil) {
			t.Fatalf("reason %v with %d inner bytes", r, len(inner))
		}
		if r != drop.OK {
			return
		}
		// Everything the kernel checks holds for what was accepted.
		if !within(inner, frame) || &inner[0] != &frame[22] {
			t.Fatal("inner packet is not the frame's bytes after the 22-byte header")
		}
		if frame[0] != 0x08 || frame[1]|frame[2]|frame[3]|frame[7] != 0 || [3]byte(frame[4:7]) != [3]byte{0, 0, 7} {
			t.Fatalf("accepted bad header % x", frame[:8])
		}
		if dst := [6]byte(frame[8:14]); dst != macB && dst != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
			t.Fatalf("accepted dst MAC % x", dst)
		}
		if [6]byte(frame[14:20]) == macB {
			t.Fatal("accepted our own source MAC")
		}
		switch et := binary.BigEndian.Uint16(frame[20:22]); {
		case et == 0x0800 && inner[0]>>4 == 4:
			ihl := int(inner[0]&0xf) * 4
			if ihl < 20 || len(inner) != int(binary.BigEndian.Uint16(inner[2:4])) || len(inner) < ihl {
				t.Fatalf("accepted IPv4 with ihl %d, total %d, %d bytes", ihl, binary.BigEndian.Uint16(inner[2:4]), len(inner))
			}
		case et == 0x86dd && inner[0]>>4 == 6:
			if len(inner) != 40+int(binary.BigEndian.Uint16(inner[4:6])) {
				t.Fatalf("accepted IPv6 whose length field disagrees: %d bytes", len(inner))
			}
		default:
			t.Fatalf("accepted EtherType %#x with IP version %d", et, inner[0]>>4)
		}
		if _, ok := encap.InnerDst(inner); !ok {
			t.Fatal("InnerDst refused an accepted packet")
		}
	})
}

func FuzzUDPDecap(f *testing.F) {
	u := encap.NewUDP(1472)
	f.Add(encaptest.IPv4(srcA, dstB, 64, 6, []byte("seed")))
	f.Add(encaptest.IPv4(srcA, dstB, 1, 6, nil))
	f.Add(encaptest.IPv6(src6, dst6, 64, 17, nil))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := append([]byte{}, pkt...)
		validBefore := encaptest.IPv4HeaderValid(before)
		out, r := u.Decap(pkt)
		if r >= drop.NumReasons || (r == drop.OK) == (out == nil) {
			t.Fatalf("reason %v with %d bytes", r, len(out))
		}
		if r != drop.OK {
			if string(pkt) != string(before) {
				t.Fatal("a refused packet was modified")
			}
			return
		}
		if !within(out, pkt) || &out[0] != &pkt[0] {
			t.Fatal("accepted packet is not a prefix of the datagram")
		}
		if out[0]>>4 == 6 { // IPv6 (felt only): hop limit decremented, nothing else
			if len(out) < 40 || len(out) != 40+int(binary.BigEndian.Uint16(out[4:6])) {
				t.Fatalf("accepted insane IPv6 header % x", out)
			}
			if before[7] < 2 || out[7] != before[7]-1 {
				t.Fatalf("hop limit %d became %d", before[7], out[7])
			}
			for i := range pkt {
				if i != 7 && pkt[i] != before[i] {
					t.Fatalf("byte %d changed besides the hop limit", i)
				}
			}
			return
		}
		ihl := int(out[0]&0xf) * 4
		if out[0]>>4 != 4 || ihl < 20 || len(out) < ihl || len(out) != int(binary.BigEndian.Uint16(out[2:4])) {
			t.Fatalf("accepted insane IPv4 header % x", out[:20])
		}
		if before[8] < 2 || out[8] != before[8]-1 {
			t.Fatalf("TTL %d became %d", before[8], out[8])
		}
		if validBefore && !encaptest.IPv4HeaderValid(out) {
			t.Fatal("a valid header checksum became invalid")
		}
		for i := range pkt {
			if i != 8 && i != 10 && i != 11 && pkt[i] != before[i] {
				t.Fatalf("byte %d changed besides TTL and checksum", i)
			}
		}
	})
}
