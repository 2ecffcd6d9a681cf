package tun

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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
	bufs := make([][]byte, d.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, headroom+65535)
	}
	sizes := make([]int, len(bufs))
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
	counts := make([]uint32, NumDrops)
	d.ReadDrops(counts)
	if counts[DropShortRead] != 1 {
		t.Fatalf("ReadDrops: %d short reads, want 1 (%v)", counts[DropShortRead], counts)
	}
}
