package lease

import (
	"context"
	"time"
)

// backoff is the retry schedule of the Watcher's list and watch and of
// Keep's watch of its own key: it doubles from 100 ms to 5 s, flanneld's
// watch reconnect schedule, and starts over after reset (a success). Its
// owner is one goroutine.
type backoff struct{ cur time.Duration }

const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, backoffMin), backoffMax)
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
