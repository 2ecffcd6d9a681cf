package routertest

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// Device is a fake TUN. The test feeds what Read returns with Inject and
// takes what Write wrote with Next or NextInto. Safe for concurrent use.
type Device struct {
	batch  int
	in     *queue // Inject → Read
	out    *queue // Write → Next
	writes atomic.Uint64

	readErr, writeErr atomic.Pointer[error]
}

// FailReads makes every Read return err until called with nil.
func (d *Device) FailReads(err error) { setErr(&d.readErr, err) }

// FailWrites makes every Write return err (writing nothing) until called
// with nil.
func (d *Device) FailWrites(err error) { setErr(&d.writeErr, err) }

func setErr(p *atomic.Pointer[error], err error) {
	if err == nil {
		p.Store(nil)
		return
	}
	p.Store(&err)
}

// NewDevice returns a device whose Read returns up to batch packets and
// whose queues each hold up to queueLen packets (more are dropped, counted
// by Dropped).
func NewDevice(batch, queueLen int) *Device {
	return &Device{batch: batch, in: newQueue(queueLen), out: newQueue(queueLen)}
}

// BatchSize is the most packets one Read returns.
func (d *Device) BatchSize() int { return d.batch }

// Inject queues copies of pkts for Read, all at once: a Read that follows
// returns them together, up to the batch size. The caller keeps pkts.
func (d *Device) Inject(pkts ...[]byte) error { return d.in.push(pkts, zeroAddr) }

// Read copies queued packets into bufs[i][offset:], blocking until there are
// some or the device is closed (then net.ErrClosed).
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if e := d.readErr.Load(); e != nil {
		return 0, *e
	}
	if len(bufs) > d.batch {
		bufs = bufs[:d.batch]
	}
	return d.in.pop(bufs, sizes, nil, offset)
}

// Write records copies of bufs[i][offset:]. Like the real TUN it takes
// any offset >= 0 and touches nothing in front of the packets.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if offset < 0 {
		return 0, fmt.Errorf("routertest: write offset %d: must not be negative", offset)
	}
	if d.out.isClosed() {
		return 0, net.ErrClosed
	}
	if e := d.writeErr.Load(); e != nil {
		return 0, *e
	}
	d.out.mu.Lock()
	for _, b := range bufs {
		d.out.pushLocked(b[offset:], zeroAddr)
	}
	d.out.mu.Unlock()
	d.out.signal()
	d.writes.Add(1)
	return len(bufs), nil
}

// NextInto blocks until a written packet is available and copies it into
// dst, returning its length; net.ErrClosed once the device is closed. It
// allocates nothing.
func (d *Device) NextInto(dst []byte) (int, error) {
	var sizes [1]int
	bufs := [1][]byte{dst}
	_, err := d.out.pop(bufs[:], sizes[:], nil, 0)
	return sizes[0], err
}

// ErrTimeout is returned by Next when nothing was written in time.
var ErrTimeout = errors.New("routertest: timed out")

// Next returns a copy of the next written packet, waiting up to timeout.
func (d *Device) Next(timeout time.Duration) ([]byte, error) {
	return next(d.out, timeout)
}

// Writes is the number of Write calls that succeeded.
func (d *Device) Writes() uint64 { return d.writes.Load() }

// Dropped is the number of packets lost because a queue was full.
func (d *Device) Dropped() uint64 { return d.in.dropped.Load() + d.out.dropped.Load() }

// Close makes Read, Write and NextInto return net.ErrClosed. Safe twice.
func (d *Device) Close() error {
	d.in.close()
	d.out.close()
	return nil
}
