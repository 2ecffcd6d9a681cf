package router

import (
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/internal/drop"
)

// tally collects one batch's drops on a loop's own goroutine, so the shared
// counters and the clock are touched once per batch, not per packet.
type tally struct {
	n       [drop.NumReasons]uint32
	example [drop.NumReasons]netip.Addr // first offending address of the batch
	err     error                       // the batch's send/write error, if any
	any     bool
}

func (t *tally) drop(r drop.Reason, a netip.Addr) {
	if t.n[r] == 0 {
		t.example[r] = a
	}
	t.n[r]++
	t.any = true
}

// add counts n drops for r with no example address (a device's own drops).
func (t *tally) add(r drop.Reason, n uint32) {
	t.n[r] += n
	t.any = true
}

// deviceDrops folds a DeviceDrops device's counts into one loop's tally;
// each loop has its own.
type deviceDrops struct {
	dev    DeviceDrops             // nil when the Device counts no drops
	counts [drop.NumReasons]uint32 // zero between folds
}

// newDeviceDrops is a zero deviceDrops when dev is not a DeviceDrops.
func newDeviceDrops(dev Device) deviceDrops {
	dd, _ := dev.(DeviceDrops)
	return deviceDrops{dev: dd}
}

// fold takes the device's Read (read) or Write drops into t and returns
// how many there were.
func (d *deviceDrops) fold(t *tally, read bool) int {
	if d.dev == nil {
		return 0
	}
	if read {
		d.dev.ReadDrops(&d.counts)
	} else {
		d.dev.WriteDrops(&d.counts)
	}
	if d.counts == ([drop.NumReasons]uint32{}) {
		return 0 // the usual batch: one compare, not a walk over every reason
	}
	total := 0
	for r, n := range &d.counts {
		if n != 0 {
			t.add(drop.Reason(r), n)
			total += int(n)
			d.counts[r] = 0
		}
	}
	return total
}

// readErrSlot is the limiter slot for transient read errors.
const readErrSlot = int(drop.NumReasons)

// dropLog adds batch tallies to Stats and logs at most one line per reason
// per interval, from either loop.
type dropLog struct {
	log    *zap.Logger
	now    func() time.Time
	every  time.Duration
	stats  *Stats
	next   [drop.NumReasons + 1]atomic.Int64  // unix ns before which the slot stays quiet
	logged [drop.NumReasons + 1]atomic.Uint64 // counter value at the slot's last line
}

// allow reports whether slot may log now, and claims the interval if so.
func (d *dropLog) allow(slot int, now int64) bool {
	next := d.next[slot].Load()
	return now >= next && d.next[slot].CompareAndSwap(next, now+int64(d.every))
}

// flush moves t into the counters, logs what the limiter allows and resets t.
func (d *dropLog) flush(t *tally, dir string) {
	if !t.any {
		return
	}
	now := d.now().UnixNano()
	for r := range t.n {
		n := t.n[r]
		if n == 0 {
			continue
		}
		total := d.stats.drops[r].Add(uint64(n))
		if d.allow(r, now) {
			since := total - d.logged[r].Swap(total)
			fields := []zap.Field{
				zap.String("dir", dir),
				zap.Stringer("reason", drop.Reason(r)),
				zap.Uint64("dropped", since),
			}
			if t.example[r].IsValid() { // a device's own drops have none
				fields = append(fields, zap.Stringer("example", t.example[r]))
			}
			if t.err != nil && (drop.Reason(r) == drop.SendFailed || drop.Reason(r) == drop.WriteFailed) {
				fields = append(fields, zap.Error(t.err))
			}
			d.log.Warn("dropped packets", fields...)
		}
		t.n[r] = 0
		t.example[r] = netip.Addr{}
	}
	t.err = nil
	t.any = false
}

// readError counts a transient read error and logs it if the limiter allows.
func (d *dropLog) readError(dir string, err error) {
	total := d.stats.readErrors.Add(1)
	if d.allow(readErrSlot, d.now().UnixNano()) {
		since := total - d.logged[readErrSlot].Swap(total)
		d.log.Warn("read failed", zap.String("dir", dir), zap.Uint64("errors", since), zap.Error(err))
	}
}
