package encap_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

var (
	macA = [6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	macB = [6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02}
	srcA = netip.MustParseAddr("10.5.1.7")
	dstB = netip.MustParseAddr("10.5.2.9")
	src6 = netip.MustParseAddr("fd00:5:1::7")
	dst6 = netip.MustParseAddr("fd00:5:2::9")
)

// checkInPlace fails the test unless Encap's output out is exactly want
// and the packet the caller put at buf[encap.Headroom] is still there, behind
// overhead bytes of header: Encap writes in front of it and copies nothing.
func checkInPlace(t *testing.T, out, want, buf []byte, overhead int) {
	t.Helper()
	if !bytes.Equal(out, want) {
		t.Fatalf("Encap\n got % x\nwant % x", out, want)
	}
	if &out[overhead] != &buf[encap.Headroom] {
		t.Fatal("Encap copied the packet instead of writing the header in front of it")
	}
}

func TestVXLANEncapExactBytes(t *testing.T) {
	pkt := encaptest.IPv4(srcA, dstB, 63, 17, []byte("hello vxlan"))
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	v := encap.NewVXLAN(0x123456, macA)
	if v.Overhead() != 22 {
		t.Fatalf("Overhead() = %d, want 22", v.Overhead())
	}
	frame, r := v.Encap(buf, encap.Headroom, len(pkt), macB)
	if r != drop.OK {
		t.Fatalf("Encap: %v", r)
	}
	want := []byte{
		0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x00, // VXLAN: I flag, VNI, reserved
		0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02, // dst = peer VtepMAC
		0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, // src = ours
		0x08, 0x00, // IPv4
	}
	want = append(want, pkt...)
	checkInPlace(t, frame, want, buf, v.Overhead())

	// Cross-check with an independent decoder.
	p := gopacket.NewPacket(frame, layers.LayerTypeVXLAN, gopacket.Default)
	vx, _ := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if vx == nil || eth == nil || ip == nil {
		t.Fatalf("gopacket could not decode VXLAN/Ethernet/IPv4: %v", p)
	}
	if !vx.ValidIDFlag || vx.VNI != 0x123456 || vx.GBPExtension {
		t.Errorf("gopacket VXLAN = %+v, want I flag and VNI 0x123456", vx)
	}
	if !bytes.Equal(eth.DstMAC, macB[:]) || !bytes.Equal(eth.SrcMAC, macA[:]) || eth.EthernetType != layers.EthernetTypeIPv4 {
		t.Errorf("gopacket Ethernet dst %s src %s type %s", eth.DstMAC, eth.SrcMAC, eth.EthernetType)
	}
	if !ip.SrcIP.Equal(srcA.AsSlice()) || !ip.DstIP.Equal(dstB.AsSlice()) || ip.TTL != 63 {
		t.Errorf("gopacket IPv4 src %s dst %s ttl %d", ip.SrcIP, ip.DstIP, ip.TTL)
	}
}

func TestVXLANEncapIPv6EtherType(t *testing.T) {
	pkt := encaptest.IPv6(src6, dst6, 64, 58, []byte{1, 2, 3, 4})
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	frame, r := encap.NewVXLAN(1, macA).Encap(buf, encap.Headroom, len(pkt), macB)
	if r != drop.OK {
		t.Fatalf("Encap: %v", r)
	}
	if !bytes.Equal(frame[:8], []byte{8, 0, 0, 0, 0, 0, 1, 0}) || frame[20] != 0x86 || frame[21] != 0xdd {
		t.Fatalf("header % x, want VNI 1 and EtherType 86 dd", frame[:22])
	}
	p := gopacket.NewPacket(frame, layers.LayerTypeVXLAN, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip == nil || !ip.DstIP.Equal(dst6.AsSlice()) {
		t.Fatalf("gopacket IPv6 layer = %v", ip)
	}
}

func TestVXLANEncapRefuses(t *testing.T) {
	v := encap.NewVXLAN(1, macA)
	good := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, 10))
	bad := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, 10))
	bad[0] = 0x55 // version 5
	for _, tc := range []struct {
		name string
		buf  []byte
		off  int
		n    int
		want drop.Reason
	}{
		{"no headroom", encaptest.Headroomed(10, good), 10, len(good), drop.TooShort},
		{"n past buffer", encaptest.Headroomed(22, good), 22, len(good) + 1, drop.TooShort},
		{"short packet", encaptest.Headroomed(22, good[:19]), 22, 19, drop.TooShort},
		{"version 5", encaptest.Headroomed(22, bad), 22, len(bad), drop.BadIP},
		{"total length past n", encaptest.Headroomed(22, good[:25]), 22, 25, drop.BadIP},
	} {
		if _, r := v.Encap(tc.buf, tc.off, tc.n, macB); r != tc.want {
			t.Errorf("%s: Encap = %v, want %v", tc.name, r, tc.want)
		}
	}
}

// vxlanFrame returns a valid frame from macA (peer) to macB (us) on vni,
// with inner packet pkt and a trailing pad of Ethernet padding.
func vxlanFrame(t *testing.T, vni uint32, pkt []byte, pad int) []byte {
	t.Helper()
	buf := encaptest.Headroomed(encap.Headroom, append(append([]byte{}, pkt...), make([]byte, pad)...))
	frame, r := encap.NewVXLAN(vni, macA).Encap(buf, encap.Headroom, len(pkt), macB)
	if r != drop.OK {
		t.Fatalf("building frame: %v", r)
	}
	return buf[encap.Headroom-22 : len(frame)+encap.Headroom-22+pad]
}

func TestVXLANDecapAccepts(t *testing.T) {
	us := encap.NewVXLAN(7, macB)
	for _, pkt := range [][]byte{
		encaptest.IPv4(srcA, dstB, 64, 6, []byte("tcp-ish payload")),
		encaptest.IPv6(src6, dst6, 64, 17, []byte("v6 payload")),
	} {
		frame := vxlanFrame(t, 7, pkt, 6) // padded: Decap trims to the IP length
		inner, r := us.Decap(frame)
		if r != drop.OK {
			t.Fatalf("Decap: %v", r)
		}
		if !bytes.Equal(inner, pkt) {
			t.Fatalf("inner\n got % x\nwant % x", inner, pkt)
		}
		if &inner[0] != &frame[22] {
			t.Fatal("Decap copied instead of returning a subslice")
		}
	}
	// Broadcast is accepted as a destination, as the kernel does.
	frame := vxlanFrame(t, 7, encaptest.IPv4(srcA, dstB, 64, 6, nil), 0)
	copy(frame[8:14], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if _, r := us.Decap(frame); r != drop.OK {
		t.Fatalf("broadcast dst: Decap = %v, want ok", r)
	}
}

func TestVXLANDecapReasons(t *testing.T) {
	us := encap.NewVXLAN(7, macB)
	pkt4 := encaptest.IPv4(srcA, dstB, 64, 6, make([]byte, 8))
	pkt6 := encaptest.IPv6(src6, dst6, 64, 6, make([]byte, 8))
	mod := func(f func(b []byte)) []byte {
		b := vxlanFrame(t, 7, pkt4, 0)
		f(b)
		return b
	}
	cases := []struct {
		name  string
		frame []byte
		want  drop.Reason
	}{
		{"empty", nil, drop.TooShort},
		{"41 bytes", vxlanFrame(t, 7, pkt4, 0)[:41], drop.TooShort},
		{"flags 0x00", mod(func(b []byte) { b[0] = 0 }), drop.BadHeader},
		{"flags 0x0c", mod(func(b []byte) { b[0] = 0x0c }), drop.BadHeader},
		{"GBP bit", mod(func(b []byte) { b[0] = 0x88 }), drop.BadHeader},
		{"reserved byte 1", mod(func(b []byte) { b[1] = 0x01 }), drop.BadHeader},
		{"reserved byte 3", mod(func(b []byte) { b[3] = 0x80 }), drop.BadHeader},
		{"reserved byte 7", mod(func(b []byte) { b[7] = 0x01 }), drop.BadHeader},
		{"VNI 8", vxlanFrame(t, 8, pkt4, 0), drop.WrongVNI},
		{"VNI 7+2^16", vxlanFrame(t, 7+1<<16, pkt4, 0), drop.WrongVNI},
		{"dst MAC other", mod(func(b []byte) { b[13] = 0x77 }), drop.NotForUs},
		{"dst MAC multicast", mod(func(b []byte) { copy(b[8:14], []byte{1, 0, 0x5e, 0, 0, 1}) }), drop.NotForUs},
		{"src MAC ours", mod(func(b []byte) { copy(b[14:20], macB[:]) }), drop.LoopMAC},
		{"EtherType ARP", mod(func(b []byte) { b[20], b[21] = 0x08, 0x06 }), drop.BadIP},
		{"IPv4 type, IPv6 packet", func() []byte {
			b := vxlanFrame(t, 7, pkt6, 0)
			b[20], b[21] = 0x08, 0x00
			return b
		}(), drop.BadIP},
		{"IPv6 type, 30-byte packet", mod(func(b []byte) { b[20], b[21] = 0x86, 0xdd }), drop.TooShort},
		{"IHL 4", mod(func(b []byte) { b[22] = 0x44 }), drop.BadIP},
		{"total length past frame", mod(func(b []byte) { b[24], b[25] = 0x05, 0xdc }), drop.BadIP},
		{"total length below IHL", mod(func(b []byte) { b[24], b[25] = 0, 19 }), drop.BadIP},
		{"IPv6 payload past frame", func() []byte {
			b := vxlanFrame(t, 7, pkt6, 0)
			b[22+5] = 9
			return b
		}(), drop.BadIP},
	}
	seen := map[drop.Reason]bool{}
	for _, tc := range cases {
		inner, r := us.Decap(tc.frame)
		if r != tc.want {
			t.Errorf("%s: Decap = %v, want %v", tc.name, r, tc.want)
		}
		if inner != nil {
			t.Errorf("%s: Decap returned %d bytes with a drop reason", tc.name, len(inner))
		}
		seen[r] = true
	}
	for _, r := range []drop.Reason{drop.TooShort, drop.BadHeader, drop.WrongVNI, drop.NotForUs, drop.LoopMAC, drop.BadIP} {
		if !seen[r] {
			t.Errorf("no case triggered %v", r)
		}
	}
}
