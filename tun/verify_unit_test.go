package tun

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/feltnet/felt/internal/drop"
)

// TestLoneUDPWithoutChecksumStaysSo: an IPv4 UDP datagram with checksum 0
// ("no checksum") is written unchanged, without a partial checksum, also
// where the device takes UDP super-packets (issue 13 item 7).
func TestLoneUDPWithoutChecksumStaysSo(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	d := &Device{uso: true}
	pkt := craftUDP(t, 5000, 1, []byte("no checksum here"), csumZero)
	bufs := headroomed(pkt)
	vh := make([]byte, VirtioHdrLen)
	for i := range vh {
		vh[i] = 0xee // stale bytes the header must not keep
	}
	info := []l4Info{inspect(bufs[0][headroom:])}
	if info[0].drop != drop.OK || info[0].sum != sumAbsent {
		t.Fatalf("inspect: drop %v, form %d; want it passed as checksum-less", info[0].drop, info[0].sum)
	}
	iov, n := d.prepRun(d.wr.iov[:2], vh, bufs, info, 0, headroom)
	if n != 1 {
		t.Fatalf("prepRun took %d packets, want 1", n)
	}
	if err := writev(int(null.Fd()), iov); err != nil {
		t.Fatalf("writev: %v", err)
	}
	for i, b := range vh {
		if b != 0 {
			t.Fatalf("virtio header byte %d = %#x, want a zero header (no NEEDS_CSUM): %x", i, b, vh)
		}
	}
	if c := binary.BigEndian.Uint16(bufs[0][headroom+26:]); c != 0 {
		t.Fatalf("checksum field rewritten to %#04x, want 0 kept", c)
	}
}

// TestVerifyForms: what inspect accepts and drops, one packet each.
func TestVerifyForms(t *testing.T) {
	udp6 := func(sum uint16, payload []byte) []byte {
		p := make([]byte, 48+len(payload))
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
		p[6], p[7] = 17, 64
		p[8], p[23] = 0xfd, 1
		p[24], p[39] = 0xfd, 2
		binary.BigEndian.PutUint16(p[40:], 4000)
		binary.BigEndian.PutUint16(p[42:], 5000)
		binary.BigEndian.PutUint16(p[44:], uint16(8+len(payload)))
		copy(p[48:], payload)
		binary.BigEndian.PutUint16(p[46:], sum)
		return p
	}
	good6 := udp6(0, []byte("v6"))
	binary.BigEndian.PutUint16(good6[46:], ^csumFold(csumAdd(pseudoSum(good6[8:24], good6[24:40], 17, 10), good6[40:])))
	badHdr := craftTCP(t, 80, 1, 1, false, false, []byte("x"), false)
	badHdr[8]-- // TTL, covered by the header checksum only
	for _, tc := range []struct {
		name string
		pkt  []byte
		drop drop.Reason
		form sumForm
	}{
		{"tcp complete", craftTCP(t, 80, 1, 1, false, false, []byte("abc"), false), drop.OK, sumComplete},
		{"tcp pseudo", craftTCP(t, 80, 1, 1, false, false, []byte("abc"), true), drop.OK, sumPseudo},
		{"tcp damaged", corrupt(craftTCP(t, 80, 1, 1, false, false, []byte("abc"), false)), drop.BadChecksum, 0},
		{"udp4 complete", craftUDP(t, 80, 1, []byte("abc"), csumFull), drop.OK, sumComplete},
		{"udp4 pseudo", craftUDP(t, 80, 1, []byte("abc"), csumPartial), drop.OK, sumPseudo},
		{"udp4 none", craftUDP(t, 80, 1, []byte("abc"), csumZero), drop.OK, sumAbsent},
		{"udp4 damaged", corrupt(craftUDP(t, 80, 1, []byte("abc"), csumFull)), drop.BadChecksum, 0},
		{"udp6 complete", good6, drop.OK, sumComplete},
		{"udp6 zero (the kernel decides)", udp6(0, []byte("v6")), drop.OK, sumAbsent},
		{"ipv4 header damaged", badHdr, drop.BadIPChecksum, 0},
	} {
		in := inspect(tc.pkt)
		if in.drop != tc.drop || (tc.drop == drop.OK && (in.sum != tc.form || !in.ok)) {
			t.Errorf("%s: drop %v form %d ok %t; want drop %v form %d", tc.name, in.drop, in.sum, in.ok, tc.drop, tc.form)
		}
	}
}
