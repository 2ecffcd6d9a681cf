package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/netns"
)

// newClusterEtcd3 is a cluster of hosts whose agents are to use a
// three-member etcd cluster (on the lab's gateway) holding the vxlan config.
func newClusterEtcd3(t *testing.T, hosts int) (*cluster, *etcdCluster) {
	t.Helper()
	c := newCluster(t, hosts, netConfig("vxlan"))
	ec := newEtcdCluster(t, c.lab.Gateway(), 3)
	putConfig(t, ec.cli, netConfig("vxlan"))
	return c, ec
}

// TestFaultEtcdMemberKilled: agents on a 3-member etcd keep watching and
// acquiring through the survivors when the leader is killed with SIGKILL: a
// lease written after the kill reaches every agent, and an agent started
// after the kill gets a lease and is reached. With FELT_LONG=1 it also waits
// for each agent's renewal (the shortest renew margin still means a minute).
func TestFaultEtcdMemberKilled(t *testing.T) {
	c, ec := newClusterEtcd3(t, 3)
	hosts := c.lab.Hosts
	args := []string{"--etcd-endpoints", ec.flag(), "--subnet-lease-renew-margin", "1439"}
	for _, h := range hosts[:2] {
		c.start(h, args...)
	}
	for _, h := range hosts[:2] {
		c.waitPeers(h, 1, 10*time.Second)
	}
	expires := map[string]time.Time{}
	for _, h := range hosts[:2] {
		expires[h.Name] = c.status(h).Expires
	}

	li, err := ec.leader(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := ec.members[li]
	t.Logf("agents' etcd connections before the kill: %s: %s", hosts[0].Name, etcdConns(c, hosts[0], ec))
	victim.kill()
	killed := time.Now()
	t.Logf("killed leader %s (%s) with SIGKILL", victim.name, victim.clientURL)

	// Another writer's lease, through the survivors, reaches both agents.
	writeLease(t, ec.cli, "10.5.250.0/24", netip.MustParseAddr("192.0.2.250"), time.Hour)
	written := time.Now()
	t.Logf("a writer added lease 10.5.250.0/24 through the survivors %v after the kill", written.Sub(killed).Round(time.Millisecond))
	for _, h := range hosts[:2] {
		c.waitPeerSubnet(h, "10.5.250.0/24", 30*time.Second)
		t.Logf("%s saw it %v after it was written", h.Name, time.Since(written).Round(time.Millisecond))
	}
	t.Logf("agents' etcd connections after the kill: %s: %s", hosts[0].Name, etcdConns(c, hosts[0], ec))

	// A new agent acquires through the survivors; the others route to it.
	c.start(hosts[2], args...)
	for _, h := range hosts {
		c.waitPeers(h, 3, 30*time.Second)
	}
	a2 := c.tunAddr(hosts[2])
	for _, h := range hosts[:2] {
		if err := pingEventually(c.ctx, h, a2, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if keys := leaseKeys(t, ec.cli); len(keys) != 4 {
		t.Fatalf("lease keys after the kill: %d %v, want 4 (3 agents + 1 written)", len(keys), keys)
	}

	if !longRun() {
		t.Log("renewal through the survivors: set FELT_LONG=1 (an agent renews a minute after acquiring at the shortest margin)")
		return
	}
	for _, h := range hosts[:2] {
		deadline := time.Now().Add(3 * time.Minute)
		for c.status(h).Expires.Sub(expires[h.Name]) < 30*time.Second {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not renew its lease through the survivors: expiry still %v", h.Name, c.status(h).Expires)
			}
			time.Sleep(time.Second)
		}
		t.Logf("%s renewed through the survivors: expiry %v → %v", h.Name, expires[h.Name], c.status(h).Expires)
	}
}

// TestFaultEtcdOutage: all of etcd is down (every member SIGKILLed) for 10 s
// (60 s with FELT_LONG=1). Traffic between existing peers flows meanwhile
// (ping, and a TCP transfer byte for byte). Near the end of the outage etcd
// comes back where only another writer reaches it (the hosts are still cut
// off): it adds a lease, churns and compacts the history past every agent's
// watch revision. When the hosts reach etcd again, every agent sees the new
// lease (after re-listing) and no lease that had time left is lost.
func TestFaultEtcdOutage(t *testing.T) {
	outage := 10 * time.Second
	if longRun() {
		outage = 60 * time.Second
	}
	c, ec := newClusterEtcd3(t, 3)
	hosts := c.lab.Hosts
	for _, h := range hosts {
		c.start(h, "--etcd-endpoints", ec.flag())
	}
	// A lease with time left that no agent renews (a host that is away).
	writeLease(t, ec.cli, "10.5.251.0/24", netip.MustParseAddr("192.0.2.251"), 10*time.Minute)
	for _, h := range hosts {
		c.waitPeers(h, 3, 10*time.Second)
	}
	addr := c.tunAddrs(hosts)
	before := leaseKeys(t, ec.cli)

	ec.killAll()
	down := time.Now()
	t.Logf("all %d etcd members killed; outage of %v", len(ec.members), outage)
	heal := partition(t, c.lab.Bridge(), ec.clientPorts())

	// Traffic between existing peers during the outage.
	if err := pingMesh(c.ctx, hosts, addr); err != nil {
		t.Fatalf("during the outage: %v", err)
	}
	transfer(t, hosts[0], hosts[1], addr[hosts[1].Name], 64<<20)
	t.Logf("during the outage: pings and 64 MiB %s → %s byte for byte, %v into it", hosts[0].Name, hosts[1].Name, time.Since(down).Round(time.Millisecond))

	// etcd back for the writer only, in the last seconds of the outage.
	if d := outage - 5*time.Second - time.Since(down); d > 0 {
		time.Sleep(d)
	}
	ec.restartAll()
	// A fresh client: the test's own has been backing off for the whole
	// outage, as the agents' have.
	wcli, err := clientv3.New(clientv3.Config{Endpoints: ec.endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer wcli.Close()
	newKey := writeLease(t, wcli, "10.5.252.0/24", netip.MustParseAddr("192.0.2.252"), time.Hour)
	for i := range 20 {
		if _, err := wcli.Put(c.ctx, "/felt-fault/churn", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := wcli.Get(c.ctx, "/felt-fault/churn")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wcli.Compact(c.ctx, resp.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if d := outage - time.Since(down); d > 0 {
		time.Sleep(d)
	}
	heal()
	back := time.Now()
	t.Logf("hosts reach etcd again after %v; history compacted to revision %d", back.Sub(down).Round(time.Millisecond), resp.Header.Revision)

	for _, h := range hosts {
		d := c.waitPeerSubnet(h, "10.5.252.0/24", 2*time.Minute)
		t.Logf("%s caught up %v after etcd came back", h.Name, d.Round(time.Millisecond))
	}
	after := leaseKeys(t, wcli)
	for _, k := range before {
		if !slices.Contains(after, k) {
			t.Errorf("lease %s (it had time left) lost in the outage: before %v after %v", k, before, after)
		}
	}
	if !slices.Contains(after, newKey) || len(after) != len(before)+1 {
		t.Errorf("lease keys after the outage: %v, want %v + %s", after, before, newKey)
	}
	relisted := 0
	for _, h := range hosts {
		if strings.Contains(c.agents[h.Name].Log(), "compacted") {
			relisted++
		}
	}
	t.Logf("%d of %d agents logged a compacted watch and re-listed", relisted, len(hosts))
	if relisted == 0 {
		t.Errorf("no agent saw its watch revision compacted: the test did not exercise re-listing")
	}
	transfer(t, hosts[2], hosts[0], addr[hosts[0].Name], 16<<20)
}

// etcdConns names the etcd members h holds established TCP connections to
// (from ss), to show which members an agent's client used.
func etcdConns(c *cluster, h *netns.Host, ec *etcdCluster) string {
	out, err := h.Command(c.ctx, "ss", "-Htn", "state", "established").Output()
	if err != nil {
		return fmt.Sprintf("(ss: %v)", err)
	}
	peers := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			peers[f[3]]++
		}
	}
	var names []string
	for _, m := range ec.members {
		if n := peers[m.hostPort()]; n > 0 {
			names = append(names, fmt.Sprintf("%s×%d", m.name, n))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}

// TestFaultEtcdMemberHung: a member that hangs without closing its
// connections (SIGSTOP: a frozen VM, a stalled disk) is like a host that
// vanished from the network. Each member in turn is frozen; a lease written
// through the other two must still reach every agent, whichever member its
// watch happened to run on. The default run freezes only the leader (about
// 15 s: a hung transport is found by keepalive); FELT_LONG=1 freezes each.
//
// Regression test: before keepalives and a bound on the watch's expiry
// lookup, an agent never saw the lease while m0 was frozen.
func TestFaultEtcdMemberHung(t *testing.T) {
	c, ec := newClusterEtcd3(t, 2)
	hosts := c.lab.Hosts
	for _, h := range hosts {
		c.start(h, "--etcd-endpoints", ec.flag())
	}
	for _, h := range hosts {
		c.waitPeers(h, 1, 10*time.Second)
	}
	victims := []int{0, 1, 2}
	if !longRun() {
		li, err := ec.leader(c.ctx)
		if err != nil {
			t.Fatal(err)
		}
		victims = []int{li}
	}
	for _, i := range victims {
		m := ec.members[i]
		others := slices.Delete(slices.Clone(ec.endpoints()), i, i+1)
		wcli, err := clientv3.New(clientv3.Config{Endpoints: others, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m.cmd.Process.Signal(syscall.SIGSTOP)
		frozen := time.Now()
		sn := fmt.Sprintf("10.5.%d.0/24", 240+i)
		writeLease(t, wcli, sn, netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 240+i)), time.Hour)
		written := time.Now()
		for _, h := range hosts {
			c.waitPeerSubnet(h, sn, 60*time.Second)
			t.Logf("%s froze; lease written %v later; %s saw it %v after the write",
				m.name, written.Sub(frozen).Round(time.Millisecond), h.Name, time.Since(written).Round(time.Millisecond))
		}
		m.cmd.Process.Signal(syscall.SIGCONT)
		wcli.Close()
		if err := m.waitHealthy(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
