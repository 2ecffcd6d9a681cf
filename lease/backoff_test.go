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
