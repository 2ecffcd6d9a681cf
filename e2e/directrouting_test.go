package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

const directRoutingConfig = `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}`

// TestInteropDirectRoutingRPFilter puts felt and a flanneld vxlan node with
// DirectRouting (flannelhost_test.go: built from the lease JSON as flanneld
// would) on one segment, with strict reverse-path filtering on both hosts.
// Each sends to the other's containers unencapsulated, so each must also
// route the other's subnet out of eth0: had felt answered through its TUN,
// the flanneld host would drop the replies (they arrive on flannel.1 from a
// subnet it routes via eth0), and felt's host would drop the requests.
func TestInteropDirectRoutingRPFilter(t *testing.T) {
	c := newCluster(t, 2, directRoutingConfig)
	hf, hk := c.lab.Hosts[0], c.lab.Hosts[1]
	for _, h := range c.lab.Hosts {
		for k, v := range map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "1"} {
			if err := h.Sysctl(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.start(hf)
	cf := c.container(hf, "c1")
	kSubnet := netip.MustParsePrefix("10.5.250.0/24")
	fk := newFlannelHost(t, c, hk, flannelVXLAN{Subnet: kSubnet, DirectRouting: true})
	gw := kSubnet.Addr().Next()
	ck, err := hk.AddContainer(c.ctx, "c1", "cni0", netip.PrefixFrom(gw.Next(), 24), gw)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, c.ctx, ck, "ip", "link", "set", "eth0", "mtu", "1450")

	c.waitPeers(hf, 1, 10*time.Second)
	feltNet := c.subnetEnv(hf).Subnet
	fk.routed.wait(t, "flanneld node (direct)", feltNet, 10*time.Second)
	waitRoute(t, c, hf, kSubnet, fmt.Sprintf("%s via %s dev eth0", kSubnet, hk.Addr), 5*time.Second)
	if got := routeTo(t, c, hk, feltNet); got != fmt.Sprintf("%s via %s dev eth0", feltNet, hf.Addr) {
		t.Fatalf("flanneld node's route to felt's subnet: %q", got)
	}

	if err := pingEventually(c.ctx, cf, ck.Addr, 5*time.Second); err != nil {
		t.Fatalf("felt → flanneld: %v", err)
	}
	if err := pingEventually(c.ctx, ck, cf.Addr, 5*time.Second); err != nil {
		t.Fatalf("flanneld → felt: %v", err)
	}
	transfer(t, cf, ck, ck.Addr, 16<<20)
	transfer(t, ck, cf, cf.Addr, 16<<20)
}

// TestDirectRouting: hosts 1 and 2 on segment A, host 3 on segment B
// behind a router namespace, all felt with vxlan DirectRouting. 1↔2 go by
// kernel routes (felt's packet counters stay still while 100 MiB cross
// each way); 1↔3 and 2↔3 go through felt's vxlan, routed by the router.
func TestDirectRouting(t *testing.T) {
	c := newCluster(t, 4, directRoutingConfig)
	h1, h2, r, h3 := c.lab.Hosts[0], c.lab.Hosts[1], c.lab.Hosts[2], c.lab.Hosts[3]
	segB := splitSegment(t, c, r, h3)
	t.Logf("segment A %s (h1 %s, h2 %s, router %s); segment B %s (h3 %s)", c.lab.Config().Underlay, h1.Addr, h2.Addr, r.Addr, segB, h3.Addr)

	hosts := []*netns.Host{h1, h2, h3}
	ctrs := map[string]*netns.Host{}
	subnets := map[string]netip.Prefix{}
	for _, h := range hosts {
		if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
			t.Fatal(err)
		}
		c.start(h)
		ctrs[h.Name] = c.container(h, "c1")
		subnets[h.Name] = c.subnetEnv(h).Subnet
	}
	for _, h := range hosts {
		c.waitPeers(h, 2, 10*time.Second)
	}

	// Paths: h1 and h2 direct to each other, everything with h3 tunnelled.
	want := map[[2]string]string{
		{h1.Name, h2.Name}: "direct", {h2.Name, h1.Name}: "direct",
		{h1.Name, h3.Name}: "tunnelled", {h2.Name, h3.Name}: "tunnelled",
		{h3.Name, h1.Name}: "tunnelled", {h3.Name, h2.Name}: "tunnelled",
	}
	for k, w := range want {
		if got := c.peerPaths(hostByName(hosts, k[0]))[subnets[k[1]].String()]; got != w {
			t.Fatalf("%s's path to %s: %q, want %q", k[0], k[1], got, w)
		}
	}
	waitRoute(t, c, h1, subnets[h2.Name], fmt.Sprintf("%s via %s dev eth0", subnets[h2.Name], h2.Addr), 5*time.Second)
	if got := routeTo(t, c, h1, subnets[h3.Name]); got != "" {
		t.Fatalf("h1 has a kernel route to h3's subnet (it must go through the TUN): %q", got)
	}
	if m := c.metrics(h1); m[`felt_peers_by_path{path="direct"}`] != 1 || m[`felt_peers_by_path{path="tunnelled"}`] != 1 {
		t.Fatalf("h1: felt_peers_by_path direct %v tunnelled %v, want 1 and 1",
			m[`felt_peers_by_path{path="direct"}`], m[`felt_peers_by_path{path="tunnelled"}`])
	}
	out, err := hostOutput(c.ctx, h1, felt(t), "status", "--healthz-port", fmt.Sprint(healthPort))
	if err != nil || !strings.Contains(out, "direct") || !strings.Contains(out, "tunnelled") {
		t.Fatalf("felt status on h1 does not say direct and tunnelled (%v):\n%s", err, out)
	}

	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				if err := pingEventually(c.ctx, ctrs[a.Name], ctrs[b.Name].Addr, 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	t.Run("direct-1-2", func(t *testing.T) {
		before1, before2 := c.packetCounters(h1), c.packetCounters(h2)
		transfer(t, ctrs[h1.Name], ctrs[h2.Name], ctrs[h2.Name].Addr, 100<<20)
		transfer(t, ctrs[h2.Name], ctrs[h1.Name], ctrs[h1.Name].Addr, 100<<20)
		if after1, after2 := c.packetCounters(h1), c.packetCounters(h2); after1 != before1 || after2 != before2 {
			t.Fatalf("felt's packet counters moved while h1↔h2 went direct: h1 %v → %v, h2 %v → %v", before1, after1, before2, after2)
		}
	})
	t.Run("tunnelled-1-3-2-3", func(t *testing.T) {
		before := c.packetCounters(h1)
		transfer(t, ctrs[h1.Name], ctrs[h3.Name], ctrs[h3.Name].Addr, 100<<20)
		transfer(t, ctrs[h3.Name], ctrs[h2.Name], ctrs[h2.Name].Addr, 100<<20)
		if after := c.packetCounters(h1); after[0] <= before[0] || after[1] <= before[1] {
			t.Fatalf("h1 → h3 did not go through felt: counters %v → %v", before, after)
		}
	})
}

// runCmd runs a command in the test's own namespace.
func runCmd(c *cluster, cmd []string) ([]byte, error) {
	return exec.CommandContext(c.ctx, cmd[0], cmd[1:]...).CombinedOutput()
}

func hostByName(hs []*netns.Host, name string) *netns.Host {
	for _, h := range hs {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// splitSegment moves h off the lab bridge onto segment B, a /24 of its own
// behind the router namespace r (a lab host with forwarding on): h's veth
// end leaves the bridge for r, h is readdressed and routes via r, and the
// segment A hosts and the lab's namespace (etcd) route B via r. It returns
// B; h.Addr becomes h's address there.
func splitSegment(t *testing.T, c *cluster, r, h *netns.Host) netip.Prefix {
	t.Helper()
	under := c.lab.Config().Underlay
	segB := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 199, under.Addr().As4()[2], 0}), 24)
	rAddr, hAddr := segB.Addr().Next(), segB.Addr().Next().Next()
	veth := c.lab.Config().Name + "v" + fmt.Sprint(len(c.lab.Hosts)-1)
	if h != c.lab.Hosts[len(c.lab.Hosts)-1] {
		t.Fatal("splitSegment: h must be the lab's last host")
	}
	if err := r.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"ip", "link", "set", veth, "nomaster"},
		{"ip", "link", "set", veth, "netns", r.Name},
		{"ip", "-n", r.Name, "addr", "add", netip.PrefixFrom(rAddr, 24).String(), "dev", veth},
		{"ip", "-n", r.Name, "link", "set", veth, "up"},
		{"ip", "-n", h.Name, "addr", "flush", "dev", h.Iface},
		{"ip", "-n", h.Name, "addr", "add", netip.PrefixFrom(hAddr, 24).String(), "dev", h.Iface},
		{"ip", "-n", h.Name, "route", "add", "default", "via", rAddr.String()},
		// The lab's namespace (etcd): removed with the lab bridge as well.
		{"ip", "route", "add", segB.String(), "via", r.Addr.String(), "dev", c.lab.Bridge()},
	} {
		if out, err := runCmd(c, cmd); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
	t.Cleanup(func() { runCmd(c, []string{"ip", "route", "del", segB.String(), "via", r.Addr.String()}) })
	for _, a := range c.lab.Hosts[:len(c.lab.Hosts)-2] {
		mustRun(t, c.ctx, a, "ip", "route", "add", segB.String(), "via", r.Addr.String())
	}
	h.Addr = hAddr
	return segB
}
