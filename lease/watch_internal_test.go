package lease

import (
	"testing"
	"time"
)

func TestBackoffSchedule(t *testing.T) {
	b := newBackoff()
	var got []time.Duration
	for range 8 {
		got = append(got, b.next())
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff steps %v, want %v ms", got, want)
		}
	}
	b.reset()
	if d := b.next(); d != 100*time.Millisecond {
		t.Errorf("after reset next() = %s, want 100ms", d)
	}
}

func TestUntilRenew(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := NewManager(nil, ManagerOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		exp  time.Time
		want time.Duration
	}{
		{now.Add(TTL), 23 * time.Hour}, // fresh: renew 60 min before expiry
		{now.Add(30 * time.Minute), 0}, // inside the margin: now
		{now.Add(-time.Minute), 0},     // overdue: now
		{time.Time{}, 0},               // reservation without expiry: now
		{now.Add(61 * time.Minute), time.Minute},
	} {
		if got := m.untilRenew(Lease{Expiration: c.exp}); got != c.want {
			t.Errorf("untilRenew(expires %v) = %s, want %s", c.exp, got, c.want)
		}
	}
}
