package router

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/feltnet/felt/internal/drop"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestDropLogRateLimitsPerReason(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	var stats Stats
	d := dropLog{log: zap.New(core), now: clock.Now, every: 5 * time.Second, stats: &stats}
	dst := netip.MustParseAddr("10.5.9.1")
	var tl tally

	batch := func(r drop.Reason, n int) {
		for range n {
			tl.drop(r, dst)
		}
		d.flush(&tl, "outbound")
	}
	batch(drop.NoRoute, 3)       // logged: first of its reason
	batch(drop.NoRoute, 2)       // quiet: within 5s
	batch(drop.UnknownSender, 1) // logged: another reason has its own limit
	clock.Advance(4 * time.Second)
	batch(drop.NoRoute, 4) // quiet still
	clock.Advance(time.Second)
	batch(drop.NoRoute, 1) // logged, reporting the 7 dropped since the last line

	entries := logs.All()
	if len(entries) != 3 {
		t.Fatalf("%d log lines, want 3: %v", len(entries), entries)
	}
	for i, w := range []struct {
		reason  string
		dropped uint64
	}{{"no_route", 3}, {"unknown_sender", 1}, {"no_route", 7}} {
		f := entries[i].ContextMap()
		if f["reason"] != w.reason || f["dropped"] != w.dropped || f["example"] != "10.5.9.1" {
			t.Errorf("line %d: %v, want reason %s dropped %d example 10.5.9.1", i, f, w.reason, w.dropped)
		}
	}
	s := stats.Snapshot()
	if s.Dropped(drop.NoRoute) != 10 || s.Dropped(drop.UnknownSender) != 1 || s.TotalDropped() != 11 {
		t.Errorf("counters %v, want no_route 10, unknown_sender 1", s.Drops)
	}
}
