package demo

import (
	"fmt"
	"io"
	"time"
)

// progress prints one line per finished step: the time since the demo
// started, the step's own duration, and what it did.
type progress struct {
	out   io.Writer
	now   func() time.Time
	start time.Time
}

func newProgress(out io.Writer, now func() time.Time) *progress {
	return &progress{out: out, now: now, start: now()}
}

// step runs fn and prints its outcome. fn returns the line to print (what
// was built, with the real names and addresses).
func (p *progress) step(what string, fn func() (string, error)) error {
	t0 := p.now()
	done, err := fn()
	d := p.now().Sub(t0)
	if err != nil {
		fmt.Fprintf(p.out, "[%6.2fs] FAIL %s (%s): %v\n", p.now().Sub(p.start).Seconds(), what, round(d), err)
		return fmt.Errorf("%s: %w", what, err)
	}
	if done == "" {
		done = what
	}
	fmt.Fprintf(p.out, "[%6.2fs] ok   %s (%s)\n", p.now().Sub(p.start).Seconds(), done, round(d))
	return nil
}

// say prints a line that is not a step.
func (p *progress) say(format string, args ...any) {
	fmt.Fprintf(p.out, "[%6.2fs]      %s\n", p.now().Sub(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}
