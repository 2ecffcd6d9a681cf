package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestMultiQueue runs three hosts with --queues 2 on both backends: felt0 is
// multi-queue with two queues attached, every host pings every other, and
// two hashed TCP transfers (one into a host that two peers talk to) arrive
// byte for byte; then one agent restarts with --queues 1 on the same
// (persistent, multi-queue) felt0 and still forwards.
func TestMultiQueue(t *testing.T) {
	eachPacketBackend(t, 3, func(t *testing.T, c *cluster, _ string) {
		hosts := c.lab.Hosts
		for _, h := range hosts {
			p := c.start(h, "--queues", "2")
			if !strings.Contains(p.Log(), "packet path queues") {
				t.Errorf("%s: no queues line in the log:\n%s", h.Name, p.Log())
			}
		}
		for _, h := range hosts {
			c.waitPeers(h, 2, 10*time.Second)
			out, err := h.Command(c.ctx, "ip", "-d", "link", "show", "felt0").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "multi_queue") || !strings.Contains(string(out), "numqueues 2") {
				t.Errorf("%s: felt0 is not multi-queue with 2 queues: %v\n%s", h.Name, err, out)
			}
		}
		addr := c.tunAddrs(hosts)
		if err := pingMesh(c.ctx, hosts, addr); err != nil {
			t.Fatal(err)
		}
		transfer(t, hosts[1], hosts[0], addr[hosts[0].Name], 64<<20)
		transfer(t, hosts[2], hosts[0], addr[hosts[0].Name], 64<<20)
		transfer(t, hosts[0], hosts[2], addr[hosts[2].Name], 32<<20)

		// Back to one queue on the same felt0.
		h := hosts[0]
		c.agents[h.Name].Stop()
		c.start(h, "--queues", "1")
		c.waitPeers(h, 2, 10*time.Second)
		for _, o := range hosts[1:] {
			if err := pingEventually(c.ctx, o, addr[h.Name], 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		transfer(t, hosts[1], h, addr[h.Name], 32<<20)
	})
}
