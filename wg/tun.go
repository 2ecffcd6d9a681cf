package wg

import (
	"os"
	"sync"
	"sync/atomic"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/tun"
)

// tunDevice is felt's TUN as wireguard-go's tun.Device. Read, Write,
// BatchSize and MTU are felt's own: wireguard-go reads TSO super-packets
// already split into its buffers and hands Write whole batches, which felt
// coalesces back into GSO super-packets. Buffers are wireguard-go's; felt's
// Device keeps none past a call.
type tunDevice struct {
	*tun.Device
	writeMu   sync.Mutex // see Write
	events    chan wgtun.Event
	closeOnce sync.Once

	// What felt's Device dropped (malformed frames from the kernel on
	// Read, damaged packets on Write), for /metrics and /status; the
	// scratch arrays belong to the reader and to the writer (under
	// writeMu).
	drops     [drop.NumReasons]atomic.Uint64
	rdScratch [drop.NumReasons]uint32
	wrScratch [drop.NumReasons]uint32
}

var _ wgtun.Device = (*tunDevice)(nil)

func newTUNDevice(d *tun.Device) *tunDevice {
	// No netlink listener: the device is up for as long as it is open, and
	// its MTU is the lease's. Events stays open (and empty) until Close.
	return &tunDevice{Device: d, events: make(chan wgtun.Event)}
}

// File is nil: wireguard-go uses it only for its UAPI socket on some
// platforms, which felt does not open.
func (t *tunDevice) File() *os.File { return nil }

// Name cannot fail.
func (t *tunDevice) Name() (string, error) { return t.Device.Name(), nil }

// Events is never sent to; Device.New brings the device up itself.
func (t *tunDevice) Events() <-chan wgtun.Event { return t.events }

// Read is felt's Device's, whose drops it counts. wireguard-go reads from
// one goroutine.
func (t *tunDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	t.Device.ReadDrops(&t.rdScratch)
	t.count(&t.rdScratch)
	return n, err
}

// Write takes one writer at a time: wireguard-go writes from one goroutine
// per peer, and felt's Device keeps one writer's state (its coalescing
// scratch, its io_uring ring), as a single router loop uses it.
func (t *tunDevice) Write(bufs [][]byte, offset int) (int, error) {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	n, err := t.Device.Write(bufs, offset)
	t.Device.WriteDrops(&t.wrScratch)
	t.count(&t.wrScratch)
	return n, err
}

// count moves a call's drop counts into the totals.
func (t *tunDevice) count(c *[drop.NumReasons]uint32) {
	if *c == ([drop.NumReasons]uint32{}) {
		return
	}
	for r, n := range c {
		if n != 0 {
			t.drops[r].Add(uint64(n))
			c[r] = 0
		}
	}
}

// dropped returns the totals by reason.
func (t *tunDevice) dropped() [drop.NumReasons]uint64 {
	var out [drop.NumReasons]uint64
	for r := range out {
		out[r] = t.drops[r].Load()
	}
	return out
}

// Close closes the TUN and the event channel, once.
func (t *tunDevice) Close() error {
	err := t.Device.Close()
	t.closeOnce.Do(func() { close(t.events) })
	return err
}
