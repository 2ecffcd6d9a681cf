package tun

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadDropsCounted feeds fill the exact frames a TUN could return,
// through a datagram socket pair (one read(2) per frame, as from a TUN):
// each malformed one is dropped and counted under its reason, and the good
// one comes through.
func TestReadDropsCounted(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	frame := func(h virtioHdr, pkt []byte) []byte {
		f := make([]byte, VirtioHdrLen+len(pkt))
		f[0], f[1] = h.flags, h.gsoType
		binary.LittleEndian.PutUint16(f[2:], h.hdrLen)
		binary.LittleEndian.PutUint16(f[4:], h.gsoSize)
		binary.LittleEndian.PutUint16(f[6:], h.csumStart)
		binary.LittleEndian.PutUint16(f[8:], h.csumOffset)
		copy(f[VirtioHdrLen:], pkt)
		return f
	}
	udp := craftUDP(t, 5000, 1, []byte("fine"), csumFull)
	tcpSuper, h := superPacket(t, false, true, make([]byte, 3000), 1000)
	noSize := h
	noSize.gsoSize = 0
	for _, f := range [][]byte{
		{1, 2, 3}, // shorter than a virtio header
		frame(virtioHdr{flags: virtioNeedsCsum, csumStart: 200, csumOffset: 6}, udp), // checksum outside the packet
		frame(noSize, tcpSuper), // GSO without a segment size
		frame(virtioHdr{gsoType: 3, gsoSize: 100, csumStart: 20}, udp), // unknown GSO type
		frame(virtioHdr{}, udp), // fine
	} {
		if _, err := unix.Write(fds[1], f); err != nil {
			t.Fatal(err)
		}
	}
	var r reader
	r.hdr = make([]byte, 256)
	bufs := make([][]byte, 2*maxSegmentsFit)
	for i := range bufs {
		bufs[i] = make([]byte, headroom+65535)
	}
	sizes := make([]int, len(bufs))
	n, err := r.fill(fds[0], bufs, sizes, headroom)
	if err != unix.EAGAIN || n != 1 || sizes[0] != len(udp) {
		t.Fatalf("fill = %d (first %d bytes), %v; want the one good packet of %d bytes, then EAGAIN", n, sizes[0], err, len(udp))
	}
	want := [NumDrops]uint32{DropShortRead: 1, DropBadHeader: 1, DropBadGSO: 2}
	d := &Device{rd: r}
	got := make([]uint32, NumDrops)
	d.ReadDrops(got)
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%v: %d, want %d", Drop(k), got[k], want[k])
		}
	}
	d.ReadDrops(got)
	if got[DropShortRead] != 1 {
		t.Errorf("ReadDrops counted again after it reset: %v", got)
	}
}
