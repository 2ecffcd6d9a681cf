package router

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/router/routertest"
)

// droppingDevice is a fake TUN that drops packets itself, as tun.Device
// does: Write drops packets with TTL 13 as bad_checksum, and Read reports
// the read drops the test set in readDrops (kinds by index, as kinds).
type droppingDevice struct {
	*routertest.Device
	kinds      []string
	readDrops  []atomic.Uint32
	writeDrops []uint32 // the writing goroutine's own
}

func newDroppingDevice(batch int) *droppingDevice {
	kinds := []string{"", "tun_short_read", "tun_bad_header", "tun_bad_gso", "bad_checksum", "bad_ip_checksum"}
	return &droppingDevice{Device: routertest.NewDevice(batch, 1024), kinds: kinds,
		readDrops: make([]atomic.Uint32, len(kinds)), writeDrops: make([]uint32, len(kinds))}
}

func (d *droppingDevice) DropKinds() []string { return d.kinds }

func (d *droppingDevice) ReadDrops(counts []uint32) {
	for k := range counts {
		counts[k] += d.readDrops[k].Swap(0)
	}
}

func (d *droppingDevice) WriteDrops(counts []uint32) {
	for k := range counts {
		counts[k] += d.writeDrops[k]
		d.writeDrops[k] = 0
	}
}

func (d *droppingDevice) Write(bufs [][]byte, offset int) (int, error) {
	keep := bufs[:0:0]
	for _, b := range bufs {
		if b[offset+8] == 13 {
			d.writeDrops[4]++
			continue
		}
		keep = append(keep, b)
	}
	return d.Device.Write(keep, offset)
}

// TestDeviceDropsCounted: drops a DeviceDrops device reports on Read and on
// Write land in Stats under the Reasons it names, and packets it dropped on
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

	dev.readDrops[1].Store(1)
	dev.readDrops[2].Store(2)
	dev.readDrops[3].Store(3)
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
	expectDrops(t, b, map[Reason]uint64{TUNShortRead: 1, TUNBadHeader: 2, TUNBadGSO: 3, BadChecksum: 2}, nil)
	if s := b.eng.Stats().Snapshot(); s.InPackets != 1 || s.InBytes != 60 {
		t.Errorf("b wrote %d packets (%d bytes), want 1 (60): dropped packets are not written", s.InPackets, s.InBytes)
	}
}

// TestDeviceDropKindUnknown: a device naming a kind no Reason has is refused
// at New, with the name.
func TestDeviceDropKindUnknown(t *testing.T) {
	dev := newDroppingDevice(8)
	dev.kinds = []string{"", "tun_gremlins"}
	nw := routertest.NewNetwork()
	conn, err := nw.Listen(netip.MustParseAddrPort("192.0.2.9:8472"), 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Device: dev, Conn: conn, Framer: newFramer(udpFraming, [6]byte{}), Network: testNetwork,
		SubnetLen: 24, Local: netip.MustParsePrefix("10.5.9.0/24")}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "tun_gremlins") {
		t.Fatalf("New = %v, want an error naming the unknown drop kind", err)
	}
}
