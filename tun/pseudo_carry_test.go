package tun

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/feltnet/felt/internal/drop"
)

// carryPair is an IPv6 address pair whose words sum to just below 2^64, so
// that adding protocol and length to the running pseudo-header sum carries.
var carryPair = [2]netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::5ff:ffff:ffff:fffd")}

// TestPseudoSumKeepsCarry: a valid IPv6 UDP packet between carryPair passes
// verification (a lost carry once dropped every such packet as bad_checksum).
func TestPseudoSumKeepsCarry(t *testing.T) {
	src, dst := carryPair[0].As16(), carryPair[1].As16()
	addrs := append(src[:], dst[:]...)
	p := buildPacket(true, false, []byte("hello"), 0, addrs)
	if ref, got := naiveSum(refPseudo(p, 40, 17, true)), csumFold(pseudoSum(p[8:24], p[24:40], 17, len(p)-40)); ref != got {
		t.Errorf("pseudoSum folds to %#04x, the RFC 1071 reference to %#04x", got, ref)
	}
	if in := inspect(p); in.drop != drop.OK || in.sum != sumComplete {
		t.Errorf("valid packet %s → %s: drop %v form %d, want accepted as complete", carryPair[0], carryPair[1], in.drop, in.sum)
	}
}

// TestSplitKeepsCarry: every segment split from a TSO super-packet between
// carryPair carries a correct TCP checksum.
func TestSplitKeepsCarry(t *testing.T) {
	src, dst := carryPair[0].As16(), carryPair[1].As16()
	pay := make([]byte, 3000)
	for i := range pay {
		pay[i] = byte(i)
	}
	p := make([]byte, 60+len(pay))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(20+len(pay)))
	p[6], p[7] = 6, 64
	copy(p[8:], src[:])
	copy(p[24:], dst[:])
	p[40+12], p[40+13] = 5<<4, tcpACK
	copy(p[60:], pay)
	h := virtioHdr{flags: virtioNeedsCsum, gsoType: gsoTCPv6, hdrLen: 60, gsoSize: 1000, csumStart: 40, csumOffset: 16}
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, 16+65535)
	}
	sizes := make([]int, 4)
	n, err := split(p, h, bufs, sizes, 16, make([]byte, 256))
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < n; j++ {
		seg := p[:sizes[0]]
		if j > 0 {
			seg = bufs[j][16 : 16+sizes[j]]
		}
		if s := naiveSum(append(refPseudo(seg, 40, 6, true), seg[40:]...)); s != 0xffff {
			t.Errorf("segment %d: TCP checksum sums to %#04x, want 0xffff", j, s)
		}
	}
}
