package testwait

import (
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records and stops the caller's
// goroutine as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func TestUntil(t *testing.T) {
	n := 0
	Until(t, "the third poll", time.Minute, time.Millisecond, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}

	rec := &fatalRecorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != rec {
				t.Errorf("Until did not fail on a condition that never holds (recovered %v)", r)
			}
		}()
		Until(rec, "never", 5*time.Millisecond, time.Millisecond, func() bool { return false })
	}()
	if rec.msg == "" {
		t.Error("no failure message")
	}
}
