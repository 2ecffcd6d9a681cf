package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// TestThreeHosts is the data-plane issue's main scenario, for both backends:
// three hosts ping pairwise and move 200 MiB byte for byte; a fourth joins and
// becomes reachable (how long that took is logged, not asserted); when it
// leaves (its lease deleted) the others drop it; hostile datagrams are
// dropped and counted.
func TestThreeHosts(t *testing.T) {
	eachPacketBackend(t, 3, func(t *testing.T, c *cluster, backend string) {
		hosts := c.lab.Hosts
		c.startAll()
		addr := c.tunAddrs(hosts)
		if err := pingMesh(c.ctx, hosts, addr); err != nil {
			t.Fatal(err)
		}
		transfer(t, hosts[0], hosts[1], addr[hosts[1].Name], 200<<20)
		transfer(t, hosts[2], hosts[0], addr[hosts[0].Name], 32<<20)

		t.Run("join", func(t *testing.T) {
			h4, err := c.lab.AddHost(c.ctx)
			if err != nil {
				t.Fatal(err)
			}
			started := time.Now()
			c.start(h4)
			ready := time.Since(started)
			a4 := c.tunAddr(h4)
			for _, h := range hosts {
				if err := pingEventually(c.ctx, h, a4, 15*time.Second); err != nil {
					t.Fatalf("4th host not reachable from %s: %v", h.Name, err)
				}
			}
			t.Logf("4th host: agent ready %v after it started, reachable from all %v after it started",
				ready.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))

			// Leave: stop the agent and delete its lease; the others drop it.
			c.agents[h4.Name].Stop()
			key := "/coreos.com/network/subnets/" + strings.Replace(netip.PrefixFrom(a4, 24).String(), "/", "-", 1)
			resp, err := c.cli.Delete(c.ctx, key)
			if err != nil || resp.Deleted != 1 {
				t.Fatalf("delete lease %s: %v (deleted %d)", key, err, resp.Deleted)
			}
			for _, h := range hosts {
				c.waitPeers(h, 2, 5*time.Second)
			}
			// Five packets, at least five counted: other no_route drops
			// (the kernel's router solicitations) only add to it.
			before := c.status(hosts[0]).Counters["drop_no_route"]
			hosts[0].Command(c.ctx, "ping", "-c", "5", "-i", "0.05", "-W", "1", a4.String()).Run()
			deadline := time.Now().Add(5 * time.Second)
			for c.status(hosts[0]).Counters["drop_no_route"] < before+5 {
				if time.Now().After(deadline) {
					t.Fatalf("5 packets to a departed host: drop_no_route %d → %d, want them counted",
						before, c.status(hosts[0]).Counters["drop_no_route"])
				}
				time.Sleep(50 * time.Millisecond)
			}
		})

		t.Run("hostile", func(t *testing.T) {
			hostile(t, c, backend, hosts, addr)
		})
	})
}

// hostile sends datagrams that must be dropped and counted: from an address
// that holds no lease, and from a peer with an inner source outside its subnet.
func hostile(t *testing.T, c *cluster, backend string, hosts []*netns.Host, addr map[string]netip.Addr) {
	target := hosts[0]
	st := c.status(target)
	to := netip.AddrPortFrom(target.Addr, uint16(backendPort(backend)))
	frame := func(src netip.Addr) []byte { return forgedFrame(t, backend, st, src, addr[target.Name]) }
	send := func(from func(func() error) error, payload []byte, n int) {
		t.Helper()
		sendDatagrams(t, from, to, payload, n)
	}
	inTestNS := func(fn func() error) error { return fn() }

	before := c.status(target).Counters
	// 1. From the lab's gateway (the test's own namespace): no lease there.
	send(inTestNS, frame(addr[hosts[1].Name]), 50)
	// 2. From a real peer, with an inner source inside a third host's subnet.
	send(hosts[1].Do, frame(addr[hosts[2].Name].Next()), 50)
	// 3. Truncated garbage from a real peer.
	send(hosts[1].Do, []byte{0x45, 0, 0}, 50)

	deadline := time.Now().Add(5 * time.Second)
	for {
		after := c.status(target).Counters
		d := func(k string) uint64 { return after[k] - before[k] }
		ok := d("drop_unknown_sender") >= 50 && d("drop_source_outside_subnet") >= 50 &&
			d("drop_too_short")+d("drop_bad_ip")+d("drop_bad_header") >= 50
		if ok {
			t.Logf("dropped: unknown_sender %d, source_outside_subnet %d, malformed %d",
				d("drop_unknown_sender"), d("drop_source_outside_subnet"), d("drop_too_short")+d("drop_bad_ip")+d("drop_bad_header"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hostile datagrams not all counted: before %v after %v", before, after)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Legitimate traffic still flows.
	if err := pingEventually(c.ctx, hosts[1], addr[target.Name], 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
