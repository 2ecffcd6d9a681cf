package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// TestHostGW runs three felt agents with flanneld's host-gw backend on one
// L2: no TUN, no socket; each host gets `<subnet> via <PublicIP> dev eth0`
// for every peer, and containers on a cni0 bridge built from subnet.env
// reach each other across hosts through the kernel alone. A route deleted
// by hand comes back at the next check (flanneld: every 10 s), a fourth host
// is reachable once it joins, and a deleted lease takes its route with it.
func TestHostGW(t *testing.T) {
	c := newCluster(t, 3, `{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}`)
	hosts := c.lab.Hosts
	for _, h := range hosts {
		if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			t.Fatal(err)
		}
		c.start(h)
	}
	ctrs := map[string]*netns.Host{}
	subnets := map[string]netip.Prefix{}
	for _, h := range hosts {
		env := c.subnetEnv(h)
		if env.MTU != c.lab.Config().MTU {
			t.Fatalf("%s: subnet.env FLANNEL_MTU %d, want the interface's %d (flanneld's host-gw)", h.Name, env.MTU, c.lab.Config().MTU)
		}
		subnets[h.Name] = env.Subnet
		ctrs[h.Name] = c.container(h, "c1")
		c.waitPeers(h, 2, 10*time.Second)
	}
	// No TUN, no UDP socket.
	for _, h := range hosts {
		if out, err := hostOutput(c.ctx, h, "ip", "-o", "link", "show"); err != nil || strings.Contains(out, "felt0") {
			t.Fatalf("%s has a TUN under host-gw (%v):\n%s", h.Name, err, out)
		}
		if out, err := hostOutput(c.ctx, h, "ss", "-uanp"); err != nil || strings.Contains(out, "felt") {
			t.Fatalf("%s: felt holds a UDP socket under host-gw (%v):\n%s", h.Name, err, out)
		}
	}
	// The routes, as flanneld's host-gw writes them.
	for _, h := range hosts {
		for _, p := range hosts {
			if p == h {
				continue
			}
			want := fmt.Sprintf("%s via %s dev eth0", subnets[p.Name], p.Addr)
			waitRoute(t, c, h, subnets[p.Name], want, 5*time.Second)
		}
		for sn, path := range c.peerPaths(h) {
			if path != "direct" {
				t.Fatalf("%s: peer %s path %q, want direct", h.Name, sn, path)
			}
		}
		if m := c.metrics(h); m[`felt_peers_by_path{path="direct"}`] != 2 || m[`felt_peers_by_path{path="tunnelled"}`] != 0 {
			t.Fatalf("%s: felt_peers_by_path direct %v tunnelled %v, want 2 and 0", h.Name,
				m[`felt_peers_by_path{path="direct"}`], m[`felt_peers_by_path{path="tunnelled"}`])
		}
	}

	h0, h1, h2 := hosts[0], hosts[1], hosts[2]
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				if err := pingEventually(c.ctx, ctrs[a.Name], ctrs[b.Name].Addr, 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	transfer(t, ctrs[h0.Name], ctrs[h1.Name], ctrs[h1.Name].Addr, 100<<20)
	transfer(t, ctrs[h2.Name], ctrs[h0.Name], ctrs[h0.Name].Addr, 100<<20)

	t.Run("route-deleted-by-hand", func(t *testing.T) {
		sn := subnets[h1.Name]
		want := routeTo(t, c, h0, sn)
		mustRun(t, c.ctx, h0, "ip", "route", "del", sn.String())
		took := waitRoute(t, c, h0, sn, want, 25*time.Second)
		t.Logf("route %s deleted by hand: back after %v (check period 10 s)", sn, took.Round(time.Millisecond))
		if !strings.Contains(c.agents[h0.Name].Log(), "route restored") {
			t.Fatalf("no 'route restored' in the agent's log:\n%s", c.agents[h0.Name].Log())
		}
	})

	t.Run("join-and-leave", func(t *testing.T) {
		h3, err := c.lab.AddHost(c.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := h3.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		c.start(h3)
		c3 := c.container(h3, "c1")
		// A liveness bound; the time it took is logged (the issue asks for 2 s).
		if err := pingEventually(c.ctx, ctrs[h0.Name], c3.Addr, 10*time.Second); err != nil {
			t.Fatalf("4th host's container not reachable: %v", err)
		}
		t.Logf("4th host's container reachable from h0's %v after its agent started", time.Since(started).Round(time.Millisecond))

		sn := c.subnetEnv(h3).Subnet
		c.agents[h3.Name].Stop()
		key := subnetsPrefix + strings.Replace(sn.String(), "/", "-", 1)
		if resp, err := c.cli.Delete(c.ctx, key); err != nil || resp.Deleted != 1 {
			t.Fatalf("delete lease %s: %v", key, err)
		}
		for _, h := range hosts {
			waitRoute(t, c, h, sn, "", 5*time.Second)
		}
	})
}
