package router

import (
	"os"
	"strings"
	"testing"
	"time"
)

// pollDev is a Device whose fd is a pipe's read end: the linger polls it as
// it would a TUN. Only Control is used.
type pollDev struct {
	Device
	r        *os.File
	controls int
	waiting  chan struct{} // if set, gets a value as each wait starts
}

func (d *pollDev) Control(f func(fd uintptr)) error {
	d.controls++
	select {
	case d.waiting <- struct{}{}: // nil or full: nobody is waiting for it
	default:
	}
	f(d.r.Fd())
	return nil
}

// replyDuringWait writes to w once the next wait has started (and its first
// poll has had a millisecond to pass), as a reply that comes while the loop
// lingers.
func replyDuringWait(d *pollDev, w *os.File) {
	d.waiting = make(chan struct{}, 1)
	go func() {
		<-d.waiting
		time.Sleep(time.Millisecond)
		w.Write([]byte{1})
	}()
}

// hookConn is a Conn that only records its idle hook.
type hookConn struct {
	Conn
	hook func(fd uintptr) bool
}

func (c *hookConn) OnIdle(f func(fd uintptr) bool) { c.hook = f }

// pipe returns a pipe's ends, closed at cleanup.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// lingerRig is a linger on a pipe "TUN" and a pipe "socket".
type lingerRig struct {
	l          *linger
	dev        *pollDev
	conn       *hookConn
	stats      Stats
	tunW, sock *os.File // write ends
	sockR      *os.File
}

func newLingerRig(t *testing.T, max time.Duration) *lingerRig {
	rig := &lingerRig{conn: &hookConn{}}
	tunR, tunW := pipe(t)
	rig.sockR, rig.sock = pipe(t)
	rig.dev, rig.tunW = &pollDev{r: tunR}, tunW
	rig.l = newLinger(max, rig.dev, rig.conn, &rig.stats)
	if rig.l == nil || rig.conn.hook == nil {
		t.Fatal("newLinger did not register with the Conn")
	}
	return rig
}

// idle runs the Conn's hook as a read that found the socket empty after a
// TUN write would (wrote: whether the loop wrote since the last one).
func (rig *lingerRig) idle(wrote bool) bool {
	rig.l.wrote = rig.l.wrote || wrote
	return rig.conn.hook(rig.sockR.Fd())
}

// TestLingerPicksUpReply: a reply that reaches the TUN during the wait ends
// it as a hit, the loop then parks (the hook returns false) and nothing is
// skipped afterwards.
func TestLingerPicksUpReply(t *testing.T) {
	rig := newLingerRig(t, 10*time.Second) // a liveness bound: the reply comes after 1 ms
	replyDuringWait(rig.dev, rig.tunW)
	if rig.idle(true) {
		t.Error("hook asked for another read after a reply on the TUN")
	}
	s := rig.stats.Snapshot()
	if s.LingerHits != 1 || s.LingerMisses != 0 {
		t.Errorf("hits %d, misses %d; want 1, 0", s.LingerHits, s.LingerMisses)
	}
	if rig.l.skip != 0 {
		t.Errorf("skip %d after a hit, want 0", rig.l.skip)
	}
}

// TestLingerOnlyAfterWrite: with no TUN write since the last idle moment,
// the hook does not poll at all.
func TestLingerOnlyAfterWrite(t *testing.T) {
	rig := newLingerRig(t, time.Second)
	rig.tunW.Write([]byte{1})
	rig.idle(true) // consumes the write
	before := rig.dev.controls
	if rig.idle(false) || rig.dev.controls != before {
		t.Errorf("polled with no write: controls %d → %d", before, rig.dev.controls)
	}
}

// TestLingerReplyAlreadyThere: a TUN readable at the first poll (the
// kernel answered inside the write) is neither a hit nor a miss.
func TestLingerReplyAlreadyThere(t *testing.T) {
	rig := newLingerRig(t, time.Second)
	rig.tunW.Write([]byte{1})
	if rig.idle(true) {
		t.Error("hook asked for another read")
	}
	if s := rig.stats.Snapshot(); s.LingerReady != 1 || s.LingerHits != 0 || s.LingerMisses != 0 || rig.l.skip != 0 {
		t.Errorf("ready %d, hits %d, misses %d, skip %d; want 1, 0, 0, 0", s.LingerReady, s.LingerHits, s.LingerMisses, rig.l.skip)
	}
}

// TestLingerMissesBackOff: waits that time out skip 1, 3, 7, 15, 15 idle
// moments after them (no poll during a skip), and a hit ends the skipping.
func TestLingerMissesBackOff(t *testing.T) {
	rig := newLingerRig(t, 200*time.Microsecond)
	for i, want := range []int{1, 3, 7, lingerSkipMax, lingerSkipMax} {
		before := rig.dev.controls
		if rig.idle(true) {
			t.Fatalf("wait %d: hook asked for another read after a timeout", i)
		}
		if rig.dev.controls != before+1 || rig.l.skip != want {
			t.Fatalf("wait %d: controls %d → %d, skip %d; want one poll, skip %d", i, before, rig.dev.controls, rig.l.skip, want)
		}
		for range want {
			rig.idle(true)
		}
		if rig.dev.controls != before+1 {
			t.Fatalf("wait %d: polled during the %d skipped moments", i, want)
		}
	}
	if s := rig.stats.Snapshot(); s.LingerMisses != 5 {
		t.Errorf("misses %d, want 5", s.LingerMisses)
	}
	rig.l.max = 10 * time.Second
	replyDuringWait(rig.dev, rig.tunW)
	rig.idle(true)
	if rig.l.skip != 0 || rig.l.miss != 0 {
		t.Errorf("after a hit: skip %d, miss %d; want 0, 0", rig.l.skip, rig.l.miss)
	}
}

// TestLingerSocketFirst: a datagram during the wait ends it; the hook asks
// the Conn to read it at once, and counts a miss (nothing was picked up).
func TestLingerSocketFirst(t *testing.T) {
	rig := newLingerRig(t, 10*time.Second)
	replyDuringWait(rig.dev, rig.sock)
	if !rig.idle(true) {
		t.Error("hook did not ask for another read with a datagram waiting")
	}
	if s := rig.stats.Snapshot(); s.LingerMisses != 1 || s.LingerHits != 0 {
		t.Errorf("hits %d, misses %d; want 0, 1", s.LingerHits, s.LingerMisses)
	}
}

// TestLingerNeeds: no linger at 0, or without a pollable Device or a Conn
// that takes an idle hook (routertest's fakes, wireguard-go's device).
func TestLingerNeeds(t *testing.T) {
	r, _ := pipe(t)
	dev, conn := &pollDev{r: r}, &hookConn{}
	var s Stats
	if newLinger(0, dev, conn, &s) != nil || conn.hook != nil {
		t.Error("linger 0: got a linger")
	}
	if newLinger(time.Millisecond, struct{ Device }{}, conn, &s) != nil {
		t.Error("a Device without Control: got a linger")
	}
	if newLinger(time.Millisecond, dev, struct{ Conn }{}, &s) != nil {
		t.Error("a Conn without OnIdle: got a linger")
	}
}

// TestLingerAllocs: the hook allocates nothing, whichever way a wait ends.
func TestLingerAllocs(t *testing.T) {
	rig := newLingerRig(t, 50*time.Microsecond)
	if a := testing.AllocsPerRun(100, func() { rig.l.skip = 0; rig.idle(true) }); a != 0 {
		t.Errorf("timed-out wait: %v allocations, want 0", a)
	}
	rig.tunW.Write([]byte{1}) // readable from now on: every wait ends at once
	if a := testing.AllocsPerRun(100, func() { rig.idle(true) }); a != 0 {
		t.Errorf("wait ended at once: %v allocations, want 0", a)
	}
}

// TestLingerFromEnv: FELT_LINGER in whole microseconds (the range rules
// are internal/envus's); unset it is DefaultLinger, and a value it cannot
// take gives DefaultLinger and an error that says where it comes from.
func TestLingerFromEnv(t *testing.T) {
	t.Setenv(LingerEnv, "50")
	if got, err := LingerFromEnv(); got != 50*time.Microsecond || err != nil {
		t.Errorf("%s=50: %v, %v; want 50µs", LingerEnv, got, err)
	}
	t.Setenv(LingerEnv, "2000")
	if got, err := LingerFromEnv(); got != DefaultLinger || err == nil || !strings.HasPrefix(err.Error(), "router: "+LingerEnv) {
		t.Errorf("%s=2000: %v, %v; want %v and an error naming the variable", LingerEnv, got, err, DefaultLinger)
	}
	os.Unsetenv(LingerEnv) // t.Setenv restores it after the test
	if got, err := LingerFromEnv(); got != DefaultLinger || err != nil {
		t.Errorf("%s unset: %v, %v; want %v", LingerEnv, got, err, DefaultLinger)
	}
}
