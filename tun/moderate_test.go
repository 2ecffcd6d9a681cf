package tun

import (
	"os"
	"testing"
	"time"

	"github.com/feltnet/felt/internal/drop"
)

// readUDP reads from dev until it has seen want UDP datagrams to port 4000.
// A Read that returns no packet must have dropped some (Read's contract):
// one that did not fails the test.
func readUDP(t *testing.T, dev *Device, bufs [][]byte, sizes []int, want int) {
	t.Helper()
	for seen := 0; seen < want; {
		n, err := dev.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatalf("Read after %d of %d datagrams: %v", seen, want, err)
		}
		if n == 0 {
			var drops [drop.NumReasons]uint32
			dev.ReadDrops(&drops)
			if drops == ([drop.NumReasons]uint32{}) {
				t.Fatalf("Read returned no packet and dropped none (after %d of %d datagrams)", seen, want)
			}
		}
		for i := 0; i < n; i++ {
			p := bufs[i][headroom : headroom+sizes[i]]
			if len(p) >= 28 && p[9] == 17 && p[22] == 4000>>8 && p[23] == 4000&0xff {
				seen++
			}
		}
	}
}

// moderationDevice is a configured TUN with read moderation on, in a
// throwaway namespace whose devices have no IPv6 (so the kernel sends none
// of its own packets into it), with a socket whose datagrams it reads.
func moderationDevice(t *testing.T, opts Options) (*Device, func(n int)) {
	t.Helper()
	inThrowawayNetns(t)
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	opts.Moderate = 50 * time.Microsecond
	dev, _ := configuredWith(t, "m", opts)
	conn := dialUDP(t, "10.5.9.9:4000")
	return dev, func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := conn.Write([]byte("small")); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// runThenOne sends a run of 8 datagrams and reads them, then sends one more
// after delay and reads it (the configured read deadline turns a lost
// wake-up into a failure); it returns the moderation sleeps so far.
func runThenOne(t *testing.T, dev *Device, send func(int), delay time.Duration) uint64 {
	t.Helper()
	bufs, sizes := readBufs(dev.BatchSize())
	send(8)
	readUDP(t, dev, bufs, sizes, 8)
	go func() { time.Sleep(delay); send(1) }()
	readUDP(t, dev, bufs, sizes, 1)
	return dev.rd.naps
}

// testRates sets the rate gate for a test: window 0 makes every fill a
// window of its own, and rate is the packets a second that count as high.
func testRates(t *testing.T, rate float64) {
	r, w := moderateRate, moderateWindow
	moderateRate, moderateWindow = rate, 0
	t.Cleanup(func() { moderateRate, moderateWindow = r, w })
}

// TestReadModeration (real TUN, both I/O paths): with the rate gate open,
// after a Read of a run of small packets a Read that finds the TUN empty
// sleeps once and then parks, so that a packet long after is still read; a
// packet that comes during the sleep is read after it; lone packets never
// make Read sleep; no Read returns empty-handed.
func TestReadModeration(t *testing.T) {
	forEachPath(t, func(t *testing.T, opts Options) {
		testRates(t, 1) // any rate is high
		dev, send := moderationDevice(t, opts)
		bufs, sizes := readBufs(dev.BatchSize())

		for i := 0; i < 3; i++ {
			send(1)
			readUDP(t, dev, bufs, sizes, 1)
		}
		if dev.rd.naps != 0 {
			t.Errorf("%d moderation sleeps after lone packets, want 0", dev.rd.naps)
		}

		// A run, then a packet long after: one sleep, then the poller.
		if naps := runThenOne(t, dev, send, 100*time.Millisecond); naps != 1 {
			t.Errorf("%d moderation sleeps after a run and a late packet, want 1", naps)
		}
		// A run, then a packet during a (long) sleep: read once it ends.
		dev.rd.moderate = 300 * time.Millisecond
		if naps := runThenOne(t, dev, send, 30*time.Millisecond); naps != 2 {
			t.Errorf("%d moderation sleeps after the second run, want 2", naps)
		}
	})
}

// TestReadModerationGate: below the rate gate a run of small packets does
// not make Read sleep.
func TestReadModerationGate(t *testing.T) {
	testRates(t, 1e12) // no rate is high
	dev, send := moderationDevice(t, Options{})
	if naps := runThenOne(t, dev, send, 50*time.Millisecond); naps != 0 {
		t.Errorf("%d moderation sleeps below the rate gate, want 0", naps)
	}
}

// TestModerationRate: the rate window turns hot at moderateRate packets a
// second over at least moderateWindow, and cold again when packets slow
// down (many request/response flows) or stop.
func TestModerationRate(t *testing.T) {
	r0, w0 := moderateRate, moderateWindow
	defer func() { moderateRate, moderateWindow = r0, w0 }()
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

// TestModerateFromEnv: FELT_TUN_MODERATE in whole microseconds (the range
// rules are internal/envus's); unset it is the default.
func TestModerateFromEnv(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want time.Duration
		bad  bool
	}{{"0", 0, false}, {"20", 20 * time.Microsecond, false}, {"1001", moderateDefault, true}} {
		t.Setenv(ModerateEnv, tc.val)
		got, err := moderateFromEnv()
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("%s=%q: %v, %v; want %v, error %v", ModerateEnv, tc.val, got, err, tc.want, tc.bad)
		}
	}
	os.Unsetenv(ModerateEnv) // t.Setenv restores it after the test
	if got, err := moderateFromEnv(); got != moderateDefault || err != nil {
		t.Errorf("%s unset: %v, %v; want %v", ModerateEnv, got, err, moderateDefault)
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
