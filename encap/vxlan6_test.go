package encap_test

import (
	"bytes"
	"testing"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

// A dual-stack node frames each family with that family's MAC, as flanneld's
// flannel.<VNI> and flannel-v6.<VNI> devices do, and accepts each family
// only at that family's MAC.
func TestVXLANDualMACs(t *testing.T) {
	mac4 := [6]byte{0x02, 0, 0, 0, 0, 4}
	mac6 := [6]byte{0x02, 0, 0, 0, 0, 6}
	peer4 := [6]byte{0x02, 1, 0, 0, 0, 4}
	peer6 := [6]byte{0x02, 1, 0, 0, 0, 6}
	v := encap.NewVXLANDual(1, mac4, mac6)
	pkt4 := encaptest.IPv4(srcA, dstB, 64, 17, []byte("four"))
	pkt6 := encaptest.IPv6(src6, dst6, 64, 17, []byte("six"))
	for _, c := range []struct {
		name      string
		pkt       []byte
		dst, src  [6]byte
		etherType []byte
	}{
		{"IPv4", pkt4, peer4, mac4, []byte{0x08, 0x00}},
		{"IPv6", pkt6, peer6, mac6, []byte{0x86, 0xdd}},
	} {
		buf := encaptest.Headroomed(encap.Headroom, c.pkt)
		f, r := v.Encap(buf, encap.Headroom, len(c.pkt), c.dst)
		if r != drop.OK {
			t.Fatalf("%s: Encap: %v", c.name, r)
		}
		if !bytes.Equal(f[8:14], c.dst[:]) || !bytes.Equal(f[14:20], c.src[:]) || !bytes.Equal(f[20:22], c.etherType) {
			t.Errorf("%s: ethernet header % x, want dst %x src %x type %x", c.name, f[8:22], c.dst, c.src, c.etherType)
		}
		// The peer sees it: its framer has the peer MACs as its own.
		peer := encap.NewVXLANDual(1, peer4, peer6)
		if in, r := peer.Decap(bytes.Clone(f)); r != drop.OK || !bytes.Equal(in, c.pkt) {
			t.Errorf("%s: peer Decap: %v", c.name, r)
		}
		// A frame for the other family's MAC is not for us (the kernel's
		// flannel-v6 device would drop it as PACKET_OTHERHOST).
		other := bytes.Clone(f)
		if c.dst == peer4 {
			copy(other[8:14], peer6[:])
		} else {
			copy(other[8:14], peer4[:])
		}
		if _, r := peer.Decap(other); r != drop.NotForUs {
			t.Errorf("%s: frame to the other family's MAC: %v, want not_for_us", c.name, r)
		}
		// Our own family MAC as source is a loop.
		if _, r := v.Decap(func() []byte { g := bytes.Clone(f); copy(g[8:14], c.src[:]); return g }()); r != drop.LoopMAC {
			t.Errorf("%s: own MAC as source: %v, want loop_mac", c.name, r)
		}
	}
	// NewVXLAN: one MAC for both families, as before.
	one := encap.NewVXLAN(1, mac4)
	buf := encaptest.Headroomed(encap.Headroom, pkt6)
	if f, _ := one.Encap(buf, encap.Headroom, len(pkt6), peer6); !bytes.Equal(f[14:20], mac4[:]) {
		t.Errorf("NewVXLAN IPv6 source MAC % x, want %x", f[14:20], mac4)
	}
}
