package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestHostGWDualStack: three felt hosts with host-gw and EnableIPv6 on one
// L2. Each lease is flanneld's dual-stack host-gw value (PublicIPv6, no
// BackendData); each host routes every peer's IPv6 subnet
// `<IPv6Subnet> via <PublicIPv6> dev eth0`, as flanneld's host-gw v6 route;
// containers reach each other over IPv6 (ping, a TCP transfer compared byte
// for byte); an IPv6 route deleted by hand comes back at the next check,
// and a deleted lease takes its IPv6 route with it.
func TestHostGWDualStack(t *testing.T) {
	c, cts, envs := dualStackCluster(t, dualConfig("host-gw"))
	hosts := c.lab.Hosts
	resp, err := c.cli.Get(c.ctx, subnetsPrefix, clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 3 {
		t.Fatalf("leases: %v %v", resp, err)
	}
	for _, kv := range resp.Kvs {
		v := string(kv.Value)
		if !strings.Contains(string(kv.Key), "&fd00:5:") || !strings.Contains(v, `"PublicIPv6":"fdee::`) ||
			!strings.HasSuffix(v, `,"BackendType":"host-gw"}`) {
			t.Errorf("lease %s = %s: want a dual-stack key, PublicIPv6 and BackendType host-gw", kv.Key, v)
		}
	}
	for _, h := range hosts {
		if out, err := hostOutput(c.ctx, h, "ip", "-o", "link", "show"); err != nil || strings.Contains(out, "felt0") {
			t.Fatalf("%s has a TUN under host-gw (%v):\n%s", h.Name, err, out)
		}
		for j, p := range hosts {
			if p == h {
				continue
			}
			waitRoute(t, c, h, envs[j].Subnet, fmt.Sprintf("%s via %s dev eth0", envs[j].Subnet, p.Addr), 5*time.Second)
			waitRoute(t, c, h, envs[j].IPv6Subnet, fmt.Sprintf("%s via %s dev eth0", envs[j].IPv6Subnet, underlay6(j)), 5*time.Second)
		}
		for sn, path := range c.peerPaths(h) {
			if path != "direct" {
				t.Fatalf("%s: peer %s path %q, want direct", h.Name, sn, path)
			}
		}
	}
	pingAll(t, c, cts)
	size := bigTransfer()
	transfer(t, cts[0].Host, cts[1].Host, cts[1].v6, size)
	transfer(t, cts[2].Host, cts[0].Host, cts[0].v6, size)

	t.Run("route-deleted-by-hand", func(t *testing.T) {
		h0 := hosts[0]
		sn := envs[1].IPv6Subnet
		want := fmt.Sprintf("%s via %s dev eth0", sn, underlay6(1))
		mustRun(t, c.ctx, h0, "ip", "-6", "route", "del", sn.String())
		took := waitRoute(t, c, h0, sn, want, 25*time.Second)
		t.Logf("IPv6 route %s deleted by hand: back after %v (check period 10 s)", sn, took.Round(time.Millisecond))
		if !strings.Contains(c.agents[h0.Name].Log(), "route restored") {
			t.Fatalf("no 'route restored' in the agent's log:\n%s", c.agents[h0.Name].Log())
		}
		if err := pingEventually(c.ctx, cts[0].Host, cts[1].v6, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("lease-deleted", func(t *testing.T) {
		h2 := hosts[2]
		c.agents[h2.Name].Stop()
		key := ""
		for _, kv := range resp.Kvs {
			if strings.Contains(string(kv.Key), strings.Replace(envs[2].Subnet.String(), "/", "-", 1)) {
				key = string(kv.Key)
			}
		}
		if d, err := c.cli.Delete(c.ctx, key); err != nil || d.Deleted != 1 {
			t.Fatalf("delete lease %q: %v", key, err)
		}
		for _, h := range hosts[:2] {
			waitRoute(t, c, h, envs[2].IPv6Subnet, "", 5*time.Second)
			waitRoute(t, c, h, envs[2].Subnet, "", 5*time.Second)
		}
	})
}

// TestDirectRoutingIPv6: three felt hosts with vxlan DirectRouting and
// EnableIPv6 on one segment (both underlays on-link). Every peer's IPv6
// subnet gets a direct route `<IPv6Subnet> via <PublicIPv6>`, and IPv6
// between containers goes by the kernel: felt's packet counters do not move
// while a TCP transfer crosses each way.
func TestDirectRoutingIPv6(t *testing.T) {
	c, cts, envs := dualStackCluster(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48",`+
		`"Backend":{"Type":"vxlan","DirectRouting":true}}`)
	hosts := c.lab.Hosts
	for _, h := range hosts {
		for j, p := range hosts {
			if p == h {
				continue
			}
			waitRoute(t, c, h, envs[j].IPv6Subnet, fmt.Sprintf("%s via %s dev eth0", envs[j].IPv6Subnet, underlay6(j)), 5*time.Second)
		}
		paths := c.peerPaths(h)
		for j := range hosts {
			if hosts[j] == h {
				continue
			}
			if got := paths[envs[j].IPv6Subnet.String()]; got != "direct" {
				t.Fatalf("%s: IPv6 peer %s path %q, want direct", h.Name, envs[j].IPv6Subnet, got)
			}
		}
	}
	pingAll(t, c, cts)
	before0, before1 := c.packetCounters(hosts[0]), c.packetCounters(hosts[1])
	size := bigTransfer()
	transfer(t, cts[0].Host, cts[1].Host, cts[1].v6, size)
	transfer(t, cts[1].Host, cts[0].Host, cts[0].v6, size)
	if after0, after1 := c.packetCounters(hosts[0]), c.packetCounters(hosts[1]); after0 != before0 || after1 != before1 {
		t.Fatalf("felt's packet counters moved while IPv6 went direct: h0 %v → %v, h1 %v → %v", before0, after0, before1, after1)
	}
}
