package tun

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/internal/drop"
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
		putVirtioHdr(f, h)
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
	bufs, sizes := readBufs(2 * maxSegmentsFit)
	n, err := r.fill(fds[0], bufs, sizes, headroom)
	if err != unix.EAGAIN || n != 1 || sizes[0] != len(udp) {
		t.Fatalf("fill = %d (first %d bytes), %v; want the one good packet of %d bytes, then EAGAIN", n, sizes[0], err, len(udp))
	}
	want := [drop.NumReasons]uint32{drop.TUNShortRead: 1, drop.TUNBadHeader: 1, drop.TUNBadGSO: 2}
	d := &Device{rd: r}
	var got [drop.NumReasons]uint32
	d.ReadDrops(&got)
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%v: %d, want %d", drop.Reason(k), got[k], want[k])
		}
	}
	d.ReadDrops(&got)
	if got[drop.TUNShortRead] != 1 {
		t.Errorf("ReadDrops counted again after it reset: %v", got)
	}
}

// TestReadReturnsAfterDrops: a wake-up that finds only malformed frames
// ends Read with 0 packets, so the caller collects the drop counts now
// rather than whenever a good frame next arrives. (A datagram socket pair
// stands in for the TUN fd: it delivers the bad frame exactly as sent.)
func TestReadReturnsAfterDrops(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	d, err := newDevice(os.NewFile(uintptr(fds[0]), "sp"), "sp", Batch, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bufs, sizes := readBufs(d.BatchSize())
	type result struct {
		n   int
		err error
	}
	ret := make(chan result, 1)
	go func() { n, err := d.Read(bufs, sizes, headroom); ret <- result{n, err} }()
	if _, err := unix.Write(fds[1], []byte{1, 2, 3}); err != nil { // shorter than a virtio header
		t.Fatal(err)
	}
	select {
	case r := <-ret:
		if r.n != 0 || r.err != nil {
			t.Fatalf("Read = %d, %v; want 0, nil after a dropped frame", r.n, r.err)
		}
	case <-time.After(10 * time.Second): // a liveness bound, not a timing
		d.Close()
		<-ret
		t.Fatal("Read stayed blocked after a dropped frame: the drop could not be collected")
	}
	var counts [drop.NumReasons]uint32
	d.ReadDrops(&counts)
	if counts[drop.TUNShortRead] != 1 {
		t.Fatalf("ReadDrops: %d short reads, want 1 (%v)", counts[drop.TUNShortRead], counts)
	}
}

// takeDrops hands over every drop once, adds to what the caller holds, and
// never reports drop.OK's slot (Write counts what passed there).
func TestTakeDrops(t *testing.T) {
	var from, to [drop.NumReasons]uint32
	from[drop.OK] = 7
	takeDrops(&from, &to)
	if to != ([drop.NumReasons]uint32{}) || from[drop.OK] != 0 {
		t.Fatalf("only passed packets: handed over %v, left %v", to, from)
	}
	to[drop.BadChecksum] = 1 // the caller's own count
	from[drop.OK], from[drop.BadChecksum], from[drop.TUNBadGSO] = 5, 2, 3
	takeDrops(&from, &to)
	if to[drop.OK] != 0 || to[drop.BadChecksum] != 3 || to[drop.TUNBadGSO] != 3 || from != ([drop.NumReasons]uint32{}) {
		t.Fatalf("after drops: handed over %v, left %v", to, from)
	}
	takeDrops(&from, &to)
	if to[drop.BadChecksum] != 3 || to[drop.TUNBadGSO] != 3 {
		t.Fatalf("a second call counted again: %v", to)
	}
}
