package lease

import (
	"testing"
	"time"
)

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
