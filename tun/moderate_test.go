package tun

import (
	"testing"
	"time"
)

// readUDP reads from dev until it has seen want UDP datagrams to port 4000
// (the kernel may send its own packets too) and returns how many Reads it
// took.
func readUDP(t *testing.T, dev *Device, bufs [][]byte, sizes []int, want int) int {
	t.Helper()
	seen, reads := 0, 0
	for seen < want {
		n, err := dev.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatalf("Read after %d of %d datagrams: %v", seen, want, err)
		}
		reads++
		for i := 0; i < n; i++ {
			p := bufs[i][headroom : headroom+sizes[i]]
			if len(p) >= 28 && p[9] == 17 && p[22] == 4000>>8 && p[23] == 4000&0xff {
				seen++
			}
		}
	}
	return reads
}

// TestReadModeration (real TUN): after a Read of a run of small packets
// (at a rate the test makes count as high), a Read that finds the TUN empty
// sleeps once (moderation) and then parks, so a packet that comes long
// after is still read; a lone packet a wake-up never makes Read sleep.
func TestReadModeration(t *testing.T) {
	if moderate == 0 {
		t.Skip("moderation is off (FELT_TUN_MODERATE=0)")
	}
	defer func(r float64, w time.Duration) { moderateRate, moderateWindow = r, w }(moderateRate, moderateWindow)
	moderateRate, moderateWindow = 1, 0 // every fill is a window, and any rate is high
	inThrowawayNetns(t)
	dev, _ := configured(t, "m")
	conn := dialUDP(t, "10.5.9.9:4000")
	bufs, sizes := readBufs(dev.BatchSize())

	// Lone packets: no sleep.
	for i := 0; i < 3; i++ {
		if _, err := conn.Write([]byte("lone")); err != nil {
			t.Fatal(err)
		}
		readUDP(t, dev, bufs, sizes, 1)
	}
	if dev.rd.naps != 0 {
		t.Errorf("%d moderation sleeps after lone packets, want 0", dev.rd.naps)
	}

	// A run of 8 small datagrams read in one go, then one more later.
	for i := 0; i < 8; i++ {
		if _, err := conn.Write([]byte("run")); err != nil {
			t.Fatal(err)
		}
	}
	readUDP(t, dev, bufs, sizes, 8)
	late := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, err := conn.Write([]byte("late"))
		late <- err
	}()
	readUDP(t, dev, bufs, sizes, 1) // the configured read deadline turns a lost wake-up into a failure
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	if dev.rd.naps == 0 {
		t.Error("no moderation sleep after a run of small packets")
	}
}

// TestModerationRate: the rate window turns hot at moderateRate packets a
// second over at least moderateWindow, and cold again when packets slow
// down (many request/response flows) or stop.
func TestModerationRate(t *testing.T) {
	defer func(r float64, w time.Duration) { moderateRate, moderateWindow = r, w }(moderateRate, moderateWindow)
	moderateRate, moderateWindow = 150e3, time.Millisecond
	var r reader
	ms := time.Millisecond
	for i, step := range []struct {
		now  time.Duration
		got  int
		want bool
	}{
		{1 * ms, 100, false},                  // the first window: since the clock's start, 1 ms
		{1200 * time.Microsecond, 100, false}, // inside the next window: the last verdict holds
		{2 * ms, 100, true},                   // 200 packets in 1 ms: 200 kpps
		{3 * ms, 50, false},                   // 50 kpps
		{3500 * time.Microsecond, 200, false},
		{4 * ms, 10, true},  // 210 in 1 ms
		{50 * ms, 4, false}, // idle for 46 ms
	} {
		r.got = step.got
		if got := r.rate(step.now); got != step.want {
			t.Errorf("step %d (%v, %d packets): hot %v, want %v", i, step.now, step.got, got, step.want)
		}
	}
}

// TestSmallRun pins what counts as a run of small packets.
func TestSmallRun(t *testing.T) {
	for _, tc := range []struct {
		sizes []int
		want  bool
	}{
		{[]int{92, 92, 92, 92}, true},
		{[]int{60, 60, 60, 1500}, false}, // a TCP segment among ACKs averages over 256 B
		{[]int{1448, 1448}, false},
		{nil, true},
	} {
		if got := smallRun(tc.sizes); got != tc.want {
			t.Errorf("smallRun(%v) = %v, want %v", tc.sizes, got, tc.want)
		}
	}
}
