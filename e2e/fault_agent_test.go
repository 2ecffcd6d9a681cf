package e2e

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestFaultAgentKilled: an agent killed with SIGKILL (no cleanup at all) and
// started again gets the same subnet and the same VtepMAC, no second lease
// is written, and traffic to it resumes (ping, then a transfer byte for byte).
func TestFaultAgentKilled(t *testing.T) {
	c := newCluster(t, 3, netConfig("vxlan"))
	hosts := c.lab.Hosts
	c.startAll()
	victim := hosts[1]
	before := c.status(victim)
	keysBefore := leaseKeys(t, c.cli)

	if err := c.agents[victim.Name].Kill(); err != nil {
		t.Fatalf("SIGKILL agent on %s: %v", victim.Name, err)
	}
	killed := time.Now()
	c.start(victim)
	ready := time.Now()
	after := c.status(victim)
	if after.Subnet != before.Subnet || after.VtepMAC != before.VtepMAC {
		t.Fatalf("after SIGKILL and restart: subnet %s VtepMAC %s, want %s %s", after.Subnet, after.VtepMAC, before.Subnet, before.VtepMAC)
	}
	if keys := leaseKeys(t, c.cli); !slices.Equal(keys, keysBefore) {
		t.Fatalf("lease keys after the restart %v, want %v (no duplicate)", keys, keysBefore)
	}
	dst := c.tunAddr(victim)
	if err := pingEventually(c.ctx, hosts[0], dst, 10*time.Second); err != nil {
		t.Fatalf("traffic to the restarted agent: %v", err)
	}
	t.Logf("restart ready %v after SIGKILL; ping from %s answered %v after ready; subnet %s, VtepMAC %s kept",
		ready.Sub(killed).Round(time.Millisecond), hosts[0].Name, time.Since(ready).Round(time.Millisecond), after.Subnet, after.VtepMAC)
	transfer(t, hosts[0], victim, dst, 32<<20)
	transfer(t, victim, hosts[2], c.tunAddr(hosts[2]), 32<<20)
}

// TestFaultLeaseDeleted: compaction while agents watch, then a lease added
// (the peers see it), then an agent's own lease deleted by hand: the agent
// takes it again (same subnet, key back, status shows it) and peers still
// reach it.
func TestFaultLeaseDeleted(t *testing.T) {
	c := newCluster(t, 3, netConfig("vxlan"))
	hosts := c.lab.Hosts
	c.startAll()
	// Compaction during the watch.
	for i := range 50 {
		if _, err := c.cli.Put(c.ctx, "/felt-fault/churn", string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.cli.Get(c.ctx, "/felt-fault/churn")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.cli.Compact(c.ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}
	writeLease(t, c.cli, "10.5.253.0/24", netip.MustParseAddr("192.0.2.253"), time.Hour)
	for _, h := range hosts {
		c.waitPeerSubnet(h, "10.5.253.0/24", 10*time.Second)
	}
	t.Logf("compacted at revision %d while watched; a lease written after it reached all %d agents", resp.Header.Revision, len(hosts))

	// Own lease deleted by hand.
	victim := hosts[2]
	subnet := c.status(victim).Subnet
	key := keyOf(subnet)
	del, err := c.cli.Delete(c.ctx, key)
	if err != nil || del.Deleted != 1 {
		t.Fatalf("delete %s: %v (deleted %d)", key, err, del.Deleted)
	}
	deleted := time.Now()
	deadline := deleted.Add(20 * time.Second)
	for {
		g, err := c.cli.Get(c.ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s not re-acquired 20 s after it was deleted:\n%s", key, c.agents[victim.Name].LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	back := time.Since(deleted)
	if st := c.status(victim); st.Subnet != subnet {
		t.Fatalf("status after re-acquire: subnet %s, want %s", st.Subnet, subnet)
	}
	if n := len(leaseKeys(t, c.cli)); n != 4 {
		t.Fatalf("%d lease keys after re-acquire, want 4 (3 agents + 1 written)", n)
	}
	for _, h := range hosts[:2] {
		c.waitPeerSubnet(h, subnet, 10*time.Second)
		if err := pingEventually(c.ctx, h, c.tunAddr(victim), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("own lease %s deleted by hand; key back %v later, same subnet, peers reach it", subnet, back.Round(time.Millisecond))
}

// TestFaultGracefulRestart: a TCP stream between hosts A and B runs while
// host C's agent is stopped with SIGTERM and started again; it completes
// byte for byte, and C is reachable again afterwards.
func TestFaultGracefulRestart(t *testing.T) {
	c := newCluster(t, 3, netConfig("udp"))
	hosts := c.lab.Hosts
	c.startAll()
	a, b, cc := hosts[0], hosts[1], hosts[2]
	s := startStream(t, a, b, c.tunAddr(b))
	time.Sleep(time.Second)
	if err := c.agents[cc.Name].Stop(); err != nil {
		t.Fatalf("SIGTERM agent on %s: %v", cc.Name, err)
	}
	time.Sleep(time.Second)
	c.start(cc)
	if err := pingEventually(c.ctx, a, c.tunAddr(cc), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := s.finish(); err != nil {
		t.Fatalf("stream %s → %s across %s's restart: %v", a.Name, b.Name, cc.Name, err)
	}
	t.Logf("stream %s → %s carried %d MiB byte for byte while %s restarted", a.Name, b.Name, s.sentN.Load()>>20, cc.Name)
	transfer(t, cc, a, c.tunAddr(a), 16<<20)
}
