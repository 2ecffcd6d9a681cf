package e2e

import "testing"

// TestWireGuardStopKeepsRoute: as for udp and vxlan, felt0 and its route
// to the Network outlive a stopped agent, so that while felt restarts the
// overlay's traffic is dropped into felt0 rather than sent out of the
// default route in the clear.
func TestWireGuardStopKeepsRoute(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}`)
	b := c.lab.Hosts[1]
	c.startAll()
	if err := c.agents[b.Name].Stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	out, err := b.Command(c.ctx, "ip", "route", "show", "10.5.0.0/16", "dev", "felt0").CombinedOutput()
	if err != nil || len(out) == 0 {
		t.Fatalf("felt0's route to the Network is gone while felt is stopped: %v %s", err, out)
	}
}
