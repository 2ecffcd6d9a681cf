package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/lease"
)

// leaseMACs reads every vxlan lease's VtepMAC from etcd, by subnet.
func leaseMACs(t *testing.T, cli *clientv3.Client) map[string]string {
	t.Helper()
	resp, err := cli.Get(t.Context(), lease.DefaultPrefix+"/"+lease.SubnetsDir+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		sn, _, err := lease.ParseSubnetKey(string(kv.Key))
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
		out[sn.String()] = d.VtepMAC
	}
	return out
}

// TestVtepMACCollision: two vxlan agents started with one VtepMAC file (one
// directory, or a cloned disk) begin with the same MAC, so each would drop
// the other's frames as loop_mac. They end up publishing different MACs,
// each agent frames with the MAC its lease publishes, they warn naming the
// file, and they reach each other.
func TestVtepMACCollision(t *testing.T) {
	c := newCluster(t, 2, netConfig("vxlan"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	shared := filepath.Join(c.dir, "shared-vtep-mac")
	c.start(a, "--vtep-mac-file", shared)
	c.start(b, "--vtep-mac-file", shared)
	first := c.status(a).VtepMAC

	deadline := time.Now().Add(15 * time.Second)
	var macs map[string]string
	for {
		macs = leaseMACs(t, c.cli)
		sa, sb := c.status(a), c.status(b)
		if len(macs) == 2 && macs[sa.Subnet] != macs[sb.Subnet] &&
			macs[sa.Subnet] == sa.VtepMAC && macs[sb.Subnet] == sb.VtepMAC {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the leases publish %v; %s uses %s, %s uses %s: want two different MACs, each agent's own",
				macs, a.Name, sa.VtepMAC, b.Name, sb.VtepMAC)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("started with %s on both; leases now %v", first, macs)
	for _, h := range []string{a.Name, b.Name} {
		if log := c.agents[h].Log(); strings.Contains(log, "VtepMAC collision") && !strings.Contains(log, shared) {
			t.Errorf("%s's collision warning does not name the file %s:\n%s", h, shared, log)
		}
	}
	if !strings.Contains(c.agents[a.Name].Log()+c.agents[b.Name].Log(), "VtepMAC collision") {
		t.Error("neither agent warned of the VtepMAC collision")
	}
	if err := pingEventually(c.ctx, a, c.tunAddr(b), 5*time.Second); err != nil {
		t.Error(err)
	}
	if err := pingEventually(c.ctx, b, c.tunAddr(a), 5*time.Second); err != nil {
		t.Error(err)
	}
}
