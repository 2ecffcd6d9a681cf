package router

import (
	"sync/atomic"
	"testing"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

// droppingDevice is a fake TUN that drops packets itself, as tun.Device
// does: Write drops packets with TTL 13 as bad_checksum, and Read reports
// the read drops the test set in readDrops.
type droppingDevice struct {
	*routertest.Device
	readDrops  [drop.NumReasons]atomic.Uint32
	writeDrops [drop.NumReasons]uint32 // the writing goroutine's own
}

var _ DeviceDrops = (*droppingDevice)(nil)

func newDroppingDevice(batch int) *droppingDevice {
	return &droppingDevice{Device: routertest.NewDevice(batch, 1024)}
}

func (d *droppingDevice) ReadDrops(counts *[drop.NumReasons]uint32) {
	for r := range counts {
		counts[r] += d.readDrops[r].Swap(0)
	}
}

func (d *droppingDevice) WriteDrops(counts *[drop.NumReasons]uint32) {
	for r := range counts {
		counts[r] += d.writeDrops[r]
		d.writeDrops[r] = 0
	}
}

func (d *droppingDevice) Write(bufs [][]byte, offset int) (int, error) {
	keep := bufs[:0:0]
	for _, b := range bufs {
		if b[offset+8] == 13 {
			d.writeDrops[drop.BadChecksum]++
			continue
		}
		keep = append(keep, b)
	}
	return d.Device.Write(keep, offset)
}

// TestDeviceDropsCounted: drops a DeviceDrops device reports on Read and on
// Write land in Stats under their reasons, and packets it dropped on
// Write do not count as written.
func TestDeviceDropsCounted(t *testing.T) {
	nw := routertest.NewNetwork()
	a := newHost(t, nw, vxlanFraming, 1, 64)
	dev := newDroppingDevice(64)
	b := newHostWith(t, nw, vxlanFraming, 2, 64, func(c *Config) { c.Device = dev })
	b.dev = dev.Device
	a.eng.SetPeers([]Peer{b.peer()})
	b.eng.SetPeers([]Peer{a.peer()})
	a.start(t)
	b.start(t)

	dev.readDrops[drop.TUNShortRead].Store(1)
	dev.readDrops[drop.TUNBadHeader].Store(2)
	dev.readDrops[drop.TUNBadGSO].Store(3)
	if err := b.dev.Inject(ipv4(b.ip(1), a.ip(2), 64, 1, 60)); err != nil {
		t.Fatal(err)
	}
	a.recv(t)
	// Two damaged packets (TTL 13 stands for a bad checksum; vxlan framing
	// keeps the TTL) and a good one.
	if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 13, 2, 60), ipv4(a.ip(1), b.ip(2), 64, 3, 60),
		ipv4(a.ip(1), b.ip(2), 13, 4, 60)); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(b.recv(t)); got != 3 {
		t.Fatalf("b's TUN got packet %d first, want the good one, 3", got)
	}
	want := map[drop.Reason]uint64{drop.TUNShortRead: 1, drop.TUNBadHeader: 2, drop.TUNBadGSO: 3, drop.BadChecksum: 2}
	expectDrops(t, b, want, nil)
	if s := b.eng.Stats().Snapshot(); s.InPackets != 1 || s.InBytes != 60 {
		t.Errorf("b wrote %d packets (%d bytes), want 1 (60): dropped packets are not written", s.InPackets, s.InBytes)
	}
	// Clean batches both ways after the drops: each drop counts once,
	// not again at the next batch's fold.
	if err := b.dev.Inject(ipv4(b.ip(1), a.ip(2), 64, 5, 60)); err != nil {
		t.Fatal(err)
	}
	a.recv(t)
	if err := a.dev.Inject(ipv4(a.ip(1), b.ip(2), 64, 6, 60)); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(b.recv(t)); got != 6 {
		t.Fatalf("b's TUN got packet %d, want 6", got)
	}
	s := b.eng.Stats().Snapshot()
	for r := drop.Reason(0); r < drop.NumReasons; r++ {
		if s.Dropped(r) != want[r] {
			t.Errorf("after clean batches, %v counted %d, want %d", r, s.Dropped(r), want[r])
		}
	}
	if s.InPackets != 2 {
		t.Errorf("b wrote %d packets, want 2", s.InPackets)
	}
}
