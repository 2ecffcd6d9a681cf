package encap_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

func TestUDPEncapExactBytes(t *testing.T) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 17, []byte("flannel udp"))
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	u := encap.NewUDP(1472)
	if u.Overhead() != 0 {
		t.Fatalf("Overhead() = %d, want 0", u.Overhead())
	}
	out, r := u.Encap(buf, encap.Headroom, len(pkt), [6]byte{})
	if r != drop.OK {
		t.Fatalf("Encap: %v", r)
	}
	// The payload is the IPv4 packet itself, TTL 64 -> 63 and the checksum
	// patched; every other byte unchanged.
	want := append([]byte{}, pkt...)
	want[8] = 63
	binary.BigEndian.PutUint16(want[10:12], 0)
	binary.BigEndian.PutUint16(want[10:12], encaptest.Checksum(want[:20]))
	checkInPlace(t, out, want, buf, u.Overhead())
	p := gopacket.NewPacket(out, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil || ip.TTL != 63 || !ip.DstIP.Equal(dstB.AsSlice()) || ip.Protocol != layers.IPProtocolUDP {
		t.Fatalf("gopacket IPv4 = %+v", ip)
	}
}

func TestUDPReasons(t *testing.T) {
	u := encap.NewUDP(100)
	v6 := encaptest.IPv6(src6, dst6, 64, 17, nil)
	cases := []struct {
		name string
		pkt  []byte
		want drop.Reason // Decap
		enc  drop.Reason // Encap
	}{
		{"19 bytes", encaptest.IPv4(srcA, dstB, 64, 17, nil)[:19], drop.TooShort, drop.TooShort},
		{"IPv6 hop limit 1", encaptest.IPv6(src6, dst6, 1, 17, nil), drop.TTLExpired, drop.TTLExpired},
		{"IPv6 payload length past datagram", func() []byte { p := append([]byte{}, v6...); p[5] = 1; return p }(), drop.BadIP, drop.BadIP},
		{"IPv6 39 bytes", v6[:39], drop.TooShort, drop.TooShort},
		{"IHL 4", func() []byte { p := encaptest.IPv4(srcA, dstB, 64, 17, nil); p[0] = 0x44; return p }(), drop.BadIP, drop.BadIP},
		{"total length past datagram", func() []byte { p := encaptest.IPv4(srcA, dstB, 64, 17, nil); p[3] = 21; return p }(), drop.BadIP, drop.BadIP},
		{"TTL 1", encaptest.IPv4(srcA, dstB, 1, 17, nil), drop.TTLExpired, drop.TTLExpired},
		{"TTL 0", encaptest.IPv4(srcA, dstB, 0, 17, nil), drop.TTLExpired, drop.TTLExpired},
		{"101 bytes > mtu 100", encaptest.IPv4(srcA, dstB, 64, 17, make([]byte, 81)), drop.OK, drop.Oversize},
	}
	for _, tc := range cases {
		orig := append([]byte{}, tc.pkt...)
		buf := encaptest.Headroomed(encap.Headroom, tc.pkt)
		if out, r := u.Encap(buf, encap.Headroom, len(tc.pkt), [6]byte{}); r != tc.enc || (r != drop.OK) != (out == nil) {
			t.Errorf("%s: Encap = %v (%d bytes), want %v", tc.name, r, len(out), tc.enc)
		}
		if r := tc.enc; r != drop.OK && !bytes.Equal(buf[encap.Headroom:], orig) {
			t.Errorf("%s: refused packet was modified", tc.name)
		}
		if out, r := u.Decap(append([]byte{}, tc.pkt...)); r != tc.want || (r != drop.OK) != (out == nil) {
			t.Errorf("%s: Decap = %v (%d bytes), want %v", tc.name, r, len(out), tc.want)
		}
	}
	// IPv6 rides flannel's udp framing between felt nodes: raw, hop limit
	// decremented on each side like the IPv4 TTL.
	for _, f := range []func([]byte) ([]byte, drop.Reason){
		func(p []byte) ([]byte, drop.Reason) { return u.Decap(p) },
		func(p []byte) ([]byte, drop.Reason) {
			return u.Encap(encaptest.Headroomed(encap.Headroom, p), encap.Headroom, len(p), [6]byte{})
		},
	} {
		out, r := f(append([]byte{}, v6...))
		if r != drop.OK || len(out) != len(v6) || out[7] != 63 || !bytes.Equal(out[8:], v6[8:]) || !bytes.Equal(out[:7], v6[:7]) {
			t.Errorf("IPv6: %v, % x; want the packet with hop limit 63", r, out)
		}
	}
	if _, r := u.Encap(make([]byte, 10), 5, 10, [6]byte{}); r != drop.TooShort {
		t.Errorf("n past buffer: Encap = %v, want too_short", r)
	}
}

// Two overlay hops through flanneld-style framing cost 2 TTL, and the header
// checksum stays valid through both patches for any header.
func TestUDPTTLAndChecksum(t *testing.T) {
	u := encap.NewUDP(1472)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		ttl := uint8(2 + rng.IntN(254))
		pkt := encaptest.IPv4(srcA, dstB, ttl, uint8(rng.UintN(256)), make([]byte, rng.IntN(40)))
		// Random id, flags, addresses: exercise every carry pattern of the patch.
		for _, j := range []int{4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19} {
			pkt[j] = byte(rng.UintN(256))
		}
		if i == 0 { // the header whose checksum is 0x0000 or 0xffff after patching
			pkt[4], pkt[5] = 0, 0
		}
		binary.BigEndian.PutUint16(pkt[10:12], 0)
		binary.BigEndian.PutUint16(pkt[10:12], encaptest.Checksum(pkt[:20]))
		buf := encaptest.Headroomed(encap.Headroom, pkt)
		out, r := u.Encap(buf, encap.Headroom, len(pkt), [6]byte{})
		if r != drop.OK {
			t.Fatalf("Encap ttl %d: %v", ttl, r)
		}
		if out[8] != ttl-1 || !encaptest.IPv4HeaderValid(out) {
			t.Fatalf("after Encap: ttl %d (want %d), checksum valid %v, header % x", out[8], ttl-1, encaptest.IPv4HeaderValid(out), out[:20])
		}
		in, r := u.Decap(out)
		if ttl == 2 {
			if r != drop.TTLExpired {
				t.Fatalf("Decap with ttl 1: %v, want ttl_expired", r)
			}
			continue
		}
		if r != drop.OK || in[8] != ttl-2 || !encaptest.IPv4HeaderValid(in) {
			t.Fatalf("after Decap: %v ttl %d (want %d), checksum valid %v", r, in[8], ttl-2, encaptest.IPv4HeaderValid(in))
		}
	}
}

func TestUDPDecapTrimsToTotalLength(t *testing.T) {
	pkt := encaptest.IPv4(srcA, dstB, 64, 17, []byte("abc"))
	in, r := encap.NewUDP(1472).Decap(append(append([]byte{}, pkt...), 0, 0, 0))
	if r != drop.OK || len(in) != len(pkt) {
		t.Fatalf("Decap = %v, %d bytes; want ok, %d", r, len(in), len(pkt))
	}
}

func TestInnerAddrs(t *testing.T) {
	v4 := encaptest.IPv4(srcA, dstB, 64, 6, nil)
	v6 := encaptest.IPv6(src6, dst6, 64, 6, nil)
	for _, tc := range []struct {
		name     string
		pkt      []byte
		src, dst string
		ok       bool
	}{
		{"ipv4", v4, "10.5.1.7", "10.5.2.9", true},
		{"ipv6", v6, "fd00:5:1::7", "fd00:5:2::9", true},
		{"ipv4 short", v4[:19], "", "", false},
		{"ipv6 short", v6[:39], "", "", false},
		{"empty", nil, "", "", false},
		{"version 5", append([]byte{0x50}, v4[1:]...), "", "", false},
	} {
		s, okS := encap.InnerSrc(tc.pkt)
		d, okD := encap.InnerDst(tc.pkt)
		if okS != tc.ok || okD != tc.ok {
			t.Errorf("%s: ok = %v/%v, want %v", tc.name, okS, okD, tc.ok)
			continue
		}
		if tc.ok && (s.String() != tc.src || d.String() != tc.dst) {
			t.Errorf("%s: src %s dst %s, want %s %s", tc.name, s, d, tc.src, tc.dst)
		}
	}
}
