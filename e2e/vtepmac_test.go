package e2e

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/agent"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
)

// leaseMACs reads every vxlan lease's VtepMACs from etcd, by IPv4 subnet:
// BackendData's and, for a dual-stack lease, BackendV6Data's ("" if none).
func leaseMACs(t *testing.T, cli *clientv3.Client) map[string][2]string {
	t.Helper()
	resp, err := cli.Get(t.Context(), lease.DefaultPrefix+"/"+lease.SubnetsDir+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	out := map[string][2]string{}
	for _, kv := range resp.Kvs {
		sn, sn6, err := lease.ParseSubnetKey(string(kv.Key))
		if err != nil {
			t.Fatalf("lease key %q: %v", kv.Key, err)
		}
		a, err := lease.ParseAttrs(kv.Value)
		if err != nil {
			t.Fatalf("lease %s: %v", sn, err)
		}
		d, _, err := a.VXLAN()
		if err != nil {
			t.Fatalf("lease %s: %v", sn, err)
		}
		var m [2]string
		m[0] = d.VtepMAC
		if sn6.IsValid() {
			d6, _, err := a.VXLAN6()
			if err != nil {
				t.Fatalf("lease %s: %v", sn, err)
			}
			m[1] = d6.VtepMAC
		}
		out[sn.String()] = m
	}
	return out
}

// TestVtepMACCollision: two vxlan agents started with one VtepMAC file (one
// directory, or a cloned disk) begin with the same MAC, so each would drop
// the other's frames as loop_mac; dual-stack, the same holds for the IPv6
// MAC in the file beside it. They end up publishing different MACs of each
// family, each agent frames with the MACs its lease publishes, they warn
// naming the file, and they reach each other over every family.
func TestVtepMACCollision(t *testing.T) {
	for _, dual := range []bool{false, true} {
		name := "IPv4"
		if dual {
			name = "dual-stack"
		}
		t.Run(name, func(t *testing.T) { vtepMACCollision(t, dual) })
	}
}

func vtepMACCollision(t *testing.T, dual bool) {
	cfg := netConfig("vxlan")
	if dual {
		cfg = dualConfig("vxlan")
	}
	c := newCluster(t, 2, cfg)
	if dual {
		addUnderlay6(t, c)
	}
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	shared := filepath.Join(c.dir, "shared-vtep-mac")
	c.start(a, "--vtep-mac-file", shared)
	c.start(b, "--vtep-mac-file", shared)
	first := c.status(a)

	// own is what an agent's status says it frames with, in leaseMACs' form.
	own := func(st agent.Status) [2]string { return [2]string{st.VtepMAC, st.VtepMACv6} }
	deadline := time.Now().Add(15 * time.Second)
	var macs map[string][2]string
	for {
		macs = leaseMACs(t, c.cli)
		sa, sb := c.status(a), c.status(b)
		ma, mb := macs[sa.Subnet], macs[sb.Subnet]
		if len(macs) == 2 && ma[0] != mb[0] && (!dual || ma[1] != mb[1] && ma[1] != "") && ma == own(sa) && mb == own(sb) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the leases publish %v; %s uses %v, %s uses %v: want different MACs of each family, each agent's own",
				macs, a.Name, own(sa), b.Name, own(sb))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("started with %v on both; leases now %v", own(first), macs)
	// Each warning names the file of its family's MAC.
	warned := map[string]bool{}
	for _, h := range []string{a.Name, b.Name} {
		for _, line := range strings.Split(c.agents[h].Log(), "\n") {
			if !strings.Contains(line, "VtepMAC collision") {
				continue
			}
			family, file := "IPv4", shared
			if strings.Contains(line, "IPv6 VtepMAC") {
				family, file = "IPv6", shared+"-v6"
			}
			warned[family] = true
			if !strings.Contains(line, `"file": "`+file+`"`) {
				t.Errorf("%s's %s collision warning does not name the file %s:\n%s", h, family, file, line)
			}
		}
	}
	if !warned["IPv4"] || dual && !warned["IPv6"] {
		t.Errorf("collision warnings for %v; want IPv4%s", warned, map[bool]string{true: " and IPv6"}[dual])
	}
	for _, x := range [][2]*netns.Host{{a, b}, {b, a}} {
		to := []netip.Addr{c.tunAddr(x[1])}
		if dual {
			to = append(to, netip.MustParsePrefix(c.status(x[1]).IPv6Subnet).Addr())
		}
		for _, addr := range to {
			if err := pingEventually(c.ctx, x[0], addr, 5*time.Second); err != nil {
				t.Errorf("%s → %s: %v", x[0].Name, addr, err)
			}
		}
	}
}
