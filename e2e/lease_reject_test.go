package e2e

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLeaseRejected: in a 3-host cluster, leases no node could have been
// given are written into etcd as someone holding a node's credentials could:
// 0.0.0.0/1 and a /25 inside host B's subnet, both at host C's PublicIP.
// Every agent rejects and counts them: a packet from C whose inner source is
// outside C's own subnet is still dropped as source_outside_subnet, and
// traffic between A and B still flows (ping both ways, a transfer byte for
// byte).
func TestLeaseRejected(t *testing.T) {
	eachPacketBackend(t, 3, func(t *testing.T, c *cluster, backend string) {
		hosts := c.lab.Hosts
		a, b, hc := hosts[0], hosts[1], hosts[2]
		c.startAll()
		addrA, addrB := c.tunAddr(a), c.tunAddr(b)
		wide := writeLease(t, c.cli, "0.0.0.0/1", hc.Addr, time.Hour)
		inB := writeLease(t, c.cli, netip.PrefixFrom(addrB, 25).String(), hc.Addr, time.Hour)
		// A valid lease written last: once an agent lists it, the watch
		// has delivered the two before it.
		sentinel := "10.5.250.0/24"
		writeLease(t, c.cli, sentinel, netip.MustParseAddr("192.0.2.250"), time.Hour)
		for _, h := range hosts {
			c.waitPeerSubnet(h, sentinel, 10*time.Second)
		}
		t.Logf("wrote %s and %s at %s's PublicIP %s", wide, inB, hc.Name, hc.Addr)

		for _, h := range hosts {
			st := c.status(h)
			for _, p := range st.Peers {
				if p.Subnet == "0.0.0.0/1" || strings.HasSuffix(p.Subnet, "/25") {
					t.Errorf("%s took lease %s as a peer at %s", h.Name, p.Subnet, p.Addr)
				}
			}
			m := c.httpGet(h, "/metrics")
			for _, want := range []string{`felt_leases_rejected_total{rule="outside_network"} 1`,
				`felt_leases_rejected_total{rule="subnet_len"} 1`} {
				if !strings.Contains(m, want) {
					t.Errorf("%s: /metrics lacks %q", h.Name, want)
				}
			}
		}

		out, err := a.Command(c.ctx, felt(t), "status", "--healthz-port", strconv.Itoa(healthPort)).Output()
		if err != nil || !strings.Contains(string(out), "rejected leases (2):") || !strings.Contains(string(out), "0.0.0.0/1") {
			t.Errorf("felt status on %s does not list the 2 rejected leases (%v):\n%s", a.Name, err, out)
		}

		// From C, an inner source in B's subnet: inside 0.0.0.0/1 and the
		// /25, outside C's own subnet.
		before := c.status(a).Counters["drop_source_outside_subnet"]
		frame := forgedFrame(t, backend, c.status(a), addrB.Next(), addrA)
		to := netip.AddrPortFrom(a.Addr, uint16(backendPort(backend)))
		sendDatagrams(t, hc.Do, to, frame, 50)
		deadline := time.Now().Add(5 * time.Second)
		for {
			d := c.status(a).Counters["drop_source_outside_subnet"] - before
			if d >= 50 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("50 packets from %s with inner source %s: %d counted as source_outside_subnet, want 50",
					hc.Name, addrB.Next(), d)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}

		if err := pingEventually(c.ctx, a, addrB, 10*time.Second); err != nil {
			t.Errorf("A → B with the forged leases in etcd: %v", err)
		}
		if err := pingEventually(c.ctx, b, addrA, 10*time.Second); err != nil {
			t.Errorf("B → A with the forged leases in etcd: %v", err)
		}
		if t.Failed() {
			return
		}
		transfer(t, a, b, addrB, 16<<20)
		transfer(t, b, a, addrA, 16<<20)
	})
}
