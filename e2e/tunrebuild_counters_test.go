package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestTUNRebuildCountersGoOn: after felt0 is deleted by hand and felt
// recreates it, /status and /metrics count on from the totals before the
// deletion (monotonic, as Prometheus counters should be) and move with
// traffic through the new TUN.
func TestTUNRebuildCountersGoOn(t *testing.T) {
	c := newCluster(t, 2, netConfig("udp"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	c.start(a)
	c.start(b)
	c.waitPeers(a, 1, 10*time.Second)
	addrB := c.tunAddr(b)
	if err := pingEventually(c.ctx, a, addrB, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	transfer(t, a, b, addrB, 1<<20)
	before := c.status(b).Counters
	metricBefore := c.metrics(b)[`felt_packets_total{direction="in"}`]
	if before["in_packets"] == 0 {
		t.Fatalf("no packets counted in before the rebuild: %v", before)
	}
	if out, err := b.Command(c.ctx, "ip", "link", "del", "felt0").CombinedOutput(); err != nil {
		t.Fatalf("ip link del: %v %s", err, out)
	}
	if err := pingEventually(c.ctx, a, addrB, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.agents[b.Name].Log(), "TUN recreated") {
		t.Fatal("felt0 not recreated")
	}
	rebuilt := c.status(b).Counters
	t.Logf("in_packets: %d before the deletion, %d after the rebuild", before["in_packets"], rebuilt["in_packets"])
	for _, k := range []string{"in_packets", "in_bytes", "out_packets", "out_bytes"} {
		if rebuilt[k] < before[k] {
			t.Errorf("/status %s went back from %d to %d across the TUN rebuild", k, before[k], rebuilt[k])
		}
	}
	if m := c.metrics(b)[`felt_packets_total{direction="in"}`]; m < metricBefore {
		t.Errorf(`/metrics felt_packets_total{direction="in"} went back from %v to %v across the TUN rebuild`, metricBefore, m)
	}
	transfer(t, a, b, addrB, 1<<20)
	if after := c.status(b).Counters; after["in_packets"] <= rebuilt["in_packets"] {
		t.Errorf("/status in_packets did not move with a transfer through the new TUN: %d then %d", rebuilt["in_packets"], after["in_packets"])
	}
}
