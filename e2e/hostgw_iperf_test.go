package e2e

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// TestHostGWIperf measures, once, one iperf3 TCP stream between two
// containers over host-gw and between the same two hosts' underlay
// addresses (the lab's veths and bridge, no overlay). It only logs: the
// numbers depend on the machine and its load. Opt-in: FELT_E2E_IPERF=1.
func TestHostGWIperf(t *testing.T) {
	if os.Getenv("FELT_E2E_IPERF") != "1" {
		t.Skip("measurement only: set FELT_E2E_IPERF=1")
	}
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}`)
	h0, h1 := c.lab.Hosts[0], c.lab.Hosts[1]
	for _, h := range c.lab.Hosts {
		if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			t.Fatal(err)
		}
		c.start(h)
	}
	c0, c1 := c.container(h0, "c1"), c.container(h1, "c1")
	c.waitPeers(h0, 1, 10*time.Second)
	if err := pingEventually(c.ctx, c0, c1.Addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load before: %s", load)
	for round := 0; round < 2; round++ {
		bare := iperf(t, c, h0, h1)
		hostgw := iperf(t, c, c0, c1)
		t.Logf("round %d: bare (host eth0 → host eth0) %.2f Gbit/s; host-gw (container → container) %.2f Gbit/s; ratio %.3f",
			round, bare/1e9, hostgw/1e9, hostgw/bare)
	}
	load, _ = os.ReadFile("/proc/loadavg")
	t.Logf("load after: %s", load)
}

// iperf runs a 5 s single-stream iperf3 from a to b's address and returns
// the receiver's bits per second.
func iperf(t *testing.T, c *cluster, a, b *netns.Host) float64 {
	t.Helper()
	srv, err := b.Start(c.ctx, "iperf3", "-s", "-1", "-B", b.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	var out []byte
	for i := 0; i < 50; i++ {
		out, err = a.Command(c.ctx, "iperf3", "-c", b.Addr.String(), "-t", "5", "-J").Output()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3 %s → %s: %v: %s", a.Name, b.Name, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.End.SumReceived.BitsPerSecond
}
