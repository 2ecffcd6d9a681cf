package e2e

import (
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
)

// ipv6OnlyConfig is an IPv6-only network config (flanneld's EnableIPv4
// false) for backend.
func ipv6OnlyConfig(backend string) string {
	return `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:6::/48","Backend":{"Type":"` + backend + `"}}`
}

// addV6Container builds cni0 on h from an IPv6-only subnet.env (the
// subnet's first address on the bridge) and one container (::2) with an
// IPv6 default route through it and FLANNEL_MTU on its interface.
func addV6Container(t *testing.T, c *cluster, h *netns.Host, env lease.SubnetEnv) (*netns.Host, netip.Addr) {
	t.Helper()
	gw := env.IPv6Subnet.Addr().Next()
	ct, err := h.AddContainer(c.ctx, "c1", "cni0", netip.PrefixFrom(gw.Next(), env.IPv6Subnet.Bits()), gw)
	if err != nil {
		t.Fatalf("container on %s: %v", h.Name, err)
	}
	mustRun(t, c.ctx, ct, "ip", "link", "set", ct.Iface, "mtu", strconv.Itoa(env.MTU))
	return ct, gw.Next()
}

// TestIPv6OnlyThreeHosts: three felt hosts on an IPv6-only config, per
// backend, the data plane over the IPv6 underlay (the lab's IPv4 underlay
// carries only etcd). subnet.env has only the IPv6 lines, felt0 no IPv4
// address, the leases are flanneld's 0.0.0.0-0&<IPv6>-<len> keys with
// PublicIP 0.0.0.0; containers reach each other over IPv6 and a hashed TCP
// transfer arrives byte for byte (32 MiB, FELT_E2E_BIG=1 for 100 MiB).
func TestIPv6OnlyThreeHosts(t *testing.T) {
	for _, backend := range []string{"vxlan", "udp"} {
		t.Run(backend, func(t *testing.T) {
			c := newCluster(t, 3, ipv6OnlyConfig(backend))
			addUnderlay6(t, c)
			for _, h := range c.lab.Hosts {
				c.start(h)
			}
			var cts []*netns.Host
			var addrs []netip.Addr
			for _, h := range c.lab.Hosts {
				raw, err := os.ReadFile(c.subnetFile(h))
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(raw), "FLANNEL_NETWORK") || strings.Contains(string(raw), "FLANNEL_SUBNET=") ||
					!strings.HasPrefix(string(raw), "FLANNEL_IPV6_NETWORK=fd00:6::/48\nFLANNEL_IPV6_SUBNET=fd00:6:") {
					t.Fatalf("%s subnet.env is not the IPv6-only form:\n%s", h.Name, raw)
				}
				env, err := lease.ParseSubnetEnv(raw)
				if err != nil {
					t.Fatal(err)
				}
				// FLANNEL_MTU: vxlan's as flanneld writes it (external − 50);
				// udp over the IPv6 underlay, felt's own, external − 48.
				link, err := hostOutput(c.ctx, h, "ip", "-o", "link", "show", "dev", h.Iface)
				m := regexp.MustCompile(` mtu (\d+) `).FindStringSubmatch(link)
				if err != nil || m == nil {
					t.Fatalf("%s: %v %q", h.Iface, err, link)
				}
				ext, _ := strconv.Atoi(m[1])
				if want := map[string]int{"vxlan": ext - 50, "udp": ext - 48}[backend]; env.MTU != want {
					t.Errorf("%s: FLANNEL_MTU %d, want %d (external MTU %d)", h.Name, env.MTU, want, ext)
				}
				out, err := hostOutput(c.ctx, h, "ip", "-4", "-o", "addr", "show", "dev", "felt0")
				if err != nil || strings.TrimSpace(out) != "" {
					t.Errorf("%s: felt0 has IPv4 addresses: %q %v", h.Name, out, err)
				}
				out, err = hostOutput(c.ctx, h, "ip", "-4", "route", "show", "dev", "felt0")
				if err != nil || strings.TrimSpace(out) != "" {
					t.Errorf("%s: IPv4 routes through felt0: %q %v", h.Name, out, err)
				}
				ct, a := addV6Container(t, c, h, env)
				cts, addrs = append(cts, ct), append(addrs, a)
			}
			for _, h := range c.lab.Hosts {
				c.waitPeers(h, 2, 20*time.Second)
			}
			st := c.status(c.lab.Hosts[0])
			if st.Subnet != "" || !strings.HasPrefix(st.IPv6Subnet, "fd00:6:") || st.PublicIPv6 != "fdee::1" ||
				(backend == "vxlan") != (st.VtepMACv6 != "") || st.VtepMAC != "" {
				t.Errorf("status: subnet %q ipv6_subnet %q public_ipv6 %q vtep_mac %q vtep_mac_v6 %q", st.Subnet, st.IPv6Subnet, st.PublicIPv6, st.VtepMAC, st.VtepMACv6)
			}
			text, err := hostOutput(c.ctx, c.lab.Hosts[0], felt(t), "status", "--healthz-port", strconv.Itoa(healthPort))
			if err != nil || !strings.HasPrefix(text, "ipv6-subnet "+st.IPv6Subnet+"  public-ipv6 fdee::1  backend "+backend) {
				t.Errorf("felt status: %v\n%s", err, text)
			}
			for _, p := range st.Peers {
				if !strings.HasPrefix(p.Subnet, "fd00:6:") || !strings.HasPrefix(p.Addr, "[fdee::") {
					t.Errorf("peer %s at %s: want an IPv6 subnet over the IPv6 underlay", p.Subnet, p.Addr)
				}
			}
			for i, a := range cts {
				for j := range cts {
					if i != j {
						if err := pingEventually(c.ctx, a, addrs[j], 10*time.Second); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			transfer(t, cts[0], cts[1], addrs[1], bigTransfer())
			// A restart (subnet.env removed by c.start) finds its lease by
			// PublicIPv6: every node's PublicIP is 0.0.0.0.
			h2 := c.lab.Hosts[2]
			before := c.status(h2).IPv6Subnet
			if err := c.agents[h2.Name].Stop(); err != nil {
				t.Fatal(err)
			}
			c.start(h2)
			c.waitPeers(h2, 2, 20*time.Second)
			if after := c.status(h2).IPv6Subnet; after != before {
				t.Errorf("restarted %s got %s, had %s", h2.Name, after, before)
			}
			if err := pingEventually(c.ctx, cts[0], addrs[2], 10*time.Second); err != nil {
				t.Fatal(err)
			}
			resp, err := c.cli.Get(c.ctx, "/coreos.com/network/subnets/", clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != 3 {
				t.Fatalf("leases: %v %v", resp, err)
			}
			for _, kv := range resp.Kvs {
				k, v := string(kv.Key), string(kv.Value)
				if !strings.HasPrefix(k, "/coreos.com/network/subnets/0.0.0.0-0&fd00:6:") || !strings.HasSuffix(k, "-64") ||
					!strings.HasPrefix(v, `{"PublicIP":"0.0.0.0","PublicIPv6":"fdee::`) || strings.Contains(v, `"BackendData"`) {
					t.Errorf("lease %s = %s: want flanneld's IPv6-only key and value", k, v)
				}
				if backend == "vxlan" && !strings.Contains(v, `"BackendV6Data":{"VNI":1,"VtepMAC":`) {
					t.Errorf("lease %s = %s: no BackendV6Data", k, v)
				}
			}
		})
	}
}
