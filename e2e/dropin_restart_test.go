package e2e

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRestartStreamSurvives: a TCP stream crosses host b (b receives it)
// while b's felt is stopped with SIGTERM and started again; the stream
// survives byte for byte, the TUN and its route stay during the gap, and
// the longest stretch without a received byte is logged (docs/reliability.md
// records it; no timing is asserted). 15 s by default, 60 s with FELT_LONG=1.
func TestRestartStreamSurvives(t *testing.T) {
	length := 15 * time.Second
	if longRun() {
		length = 60 * time.Second
	}
	c := newCluster(t, 2, netConfig("vxlan"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	c.startAll()
	s := startStream(t, a, b, c.tunAddr(b))

	// Sample the receiver's byte count every 5 ms; the longest time the
	// count stood still is the gap.
	var gap atomic.Int64
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		last, since := s.receivd.Load(), time.Now()
		for {
			select {
			case <-stopSample:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := s.receivd.Load(); n != last {
				if d := time.Since(since); int64(d) > gap.Load() {
					gap.Store(int64(d))
				}
				last, since = n, time.Now()
			}
		}
	}()
	time.Sleep(length / 3)
	steady := time.Duration(gap.Swap(0))
	stopAt := time.Now()
	if err := c.agents[b.Name].Stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if out, err := b.Command(c.ctx, "ip", "route", "show", "dev", "felt0").CombinedOutput(); err != nil || len(out) == 0 {
		t.Fatalf("felt0's route gone while felt is stopped: %v %s", err, out)
	}
	c.start(b)
	restart := time.Since(stopAt)
	time.Sleep(length - length/3)
	close(stopSample)
	<-sampled
	if err := s.finish(); err != nil {
		t.Fatalf("stream across %s's restart: %v", b.Name, err)
	}
	t.Logf("stream of %v, %d MiB byte for byte; felt on %s stopped and started in %v (to subnet.env written); "+
		"longest stall in the received bytes: %v around the restart (%v before it)",
		length, s.receivd.Load()>>20, b.Name, restart.Round(time.Millisecond),
		time.Duration(gap.Load()).Round(time.Millisecond), steady.Round(time.Millisecond))
}

// TestRestartTUNDeleted: a TUN deleted by hand under a running felt is
// recreated (address and route included) and traffic flows again.
func TestRestartTUNDeleted(t *testing.T) {
	c := newCluster(t, 2, netConfig("udp"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	c.startAll()
	addrB := c.tunAddr(b)
	if err := pingEventually(c.ctx, a, addrB, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if out, err := b.Command(c.ctx, "ip", "link", "del", "felt0").CombinedOutput(); err != nil {
		t.Fatalf("ip link del: %v %s", err, out)
	}
	del := time.Now()
	if err := pingEventually(c.ctx, a, addrB, 20*time.Second); err != nil {
		t.Fatalf("after felt0 was deleted on %s: %v\n%s", b.Name, err, c.agents[b.Name].Log())
	}
	select {
	case <-c.agents[b.Name].Done():
		t.Fatalf("felt exited after its TUN was deleted:\n%s", c.agents[b.Name].Log())
	default:
	}
	if log := c.agents[b.Name].Log(); !strings.Contains(log, "TUN recreated") {
		t.Fatalf("no recreation in the log:\n%s", log)
	}
	t.Logf("felt0 recreated and reachable %v after it was deleted", time.Since(del).Round(time.Millisecond))
	transfer(t, a, b, addrB, 4<<20)
}
