package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/lease"
)

// dualRouteCluster starts three dual-stack hosts on one L2 (IPv6 underlay
// fdee::/64 beside the lab's IPv4 one) with config, a cni0 container on
// each, and waits for both families' peers.
func dualRouteCluster(t *testing.T, config string) (*cluster, []container6, []lease.SubnetEnv) {
	c := newCluster(t, 3, config)
	addUnderlay6(t, c)
	for _, h := range c.lab.Hosts {
		c.start(h)
	}
	var cts []container6
	var envs []lease.SubnetEnv
	for _, h := range c.lab.Hosts {
		env, err := lease.ReadSubnetEnv(c.subnetFile(h))
		if err != nil {
			t.Fatal(err)
		}
		if !env.IPv6Subnet.IsValid() || env.IPv6Network != netip.MustParsePrefix("fd00:5::/48") {
			t.Fatalf("%s subnet.env has no IPv6 lines: %+v", h.Name, env)
		}
		envs = append(envs, env)
		cts = append(cts, addDualContainer(t, c, h, env))
	}
	for _, h := range c.lab.Hosts {
		c.waitPeers(h, 4, 20*time.Second) // two other hosts, both families
	}
	return c, cts, envs
}

// pingAll pings every other container over both families.
func pingAll(t *testing.T, c *cluster, cts []container6) {
	t.Helper()
	for _, a := range cts {
		for _, b := range cts {
			if a.Name == b.Name {
				continue
			}
			for _, dst := range []netip.Addr{b.v4, b.v6} {
				if err := pingEventually(c.ctx, a.Host, dst, 10*time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestHostGWDualStack: three felt hosts with host-gw and EnableIPv6 on one
// L2. Each lease is flanneld's dual-stack host-gw value (PublicIPv6, no
// BackendData); each host routes every peer's IPv6 subnet
// `<IPv6Subnet> via <PublicIPv6> dev eth0`, as flanneld's host-gw v6 route;
// containers reach each other over IPv6 (ping, a TCP transfer compared byte
// for byte); an IPv6 route deleted by hand comes back at the next check,
// and a deleted lease takes its IPv6 route with it.
func TestHostGWDualStack(t *testing.T) {
	c, cts, envs := dualRouteCluster(t, dualConfig("host-gw"))
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
	c, cts, envs := dualRouteCluster(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48",`+
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
