package etcdstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
)

func newManager(t *testing.T, st lease.Store, seed uint64, o lease.ManagerOptions) *lease.Manager {
	t.Helper()
	o.Rand = rand.New(rand.NewPCG(seed, 1))
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	m, err := lease.NewManager(st, o)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// mustAcquire is m.Acquire(ctx, cfg, attrs, prev) that fails the test on an
// error.
func mustAcquire(t *testing.T, ctx context.Context, m *lease.Manager, cfg *lease.Config, attrs lease.Attrs, prev netip.Prefix) lease.Lease {
	t.Helper()
	l, err := m.Acquire(ctx, cfg, attrs, prev)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return l
}

func TestConcurrentAcquire(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.7.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`)
		const n = 200
		got, errs := acquireAll(t, ctx, st, cfg, n, nodeAttrs)
		seen := checkAcquired(t, cfg, got, errs)
		ls, _, err := st.List(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != n {
			t.Fatalf("listed %d leases after %d acquisitions", len(ls), n)
		}
		for _, l := range ls {
			i, ok := seen[l.Subnet]
			if !ok || l.Attrs.PublicIP != nodeAttrs(i).PublicIP {
				t.Errorf("listed %s, not what any node acquired", fmtIP(l))
			}
		}
	})
}

func TestSmallPoolRunsOut(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.8.0.0/16","SubnetLen":24,"SubnetMin":"10.8.1.0","SubnetMax":"10.8.4.0"}`)
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = newManager(t, st, uint64(i), lease.ManagerOptions{}).Acquire(ctx, cfg, nodeAttrs(i), netip.Prefix{})
			})
		}
		wg.Wait()
		ok, out := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, lease.ErrOutOfSubnets):
				out++
				if !strings.Contains(err.Error(), "10.8.0.0/16") || !strings.Contains(err.Error(), "4") {
					t.Errorf("node %d: %v; want the pool and the held count named", i, err)
				}
			default:
				t.Errorf("node %d: unexpected error %v", i, err)
			}
		}
		if ok != 4 || out != 2 {
			t.Errorf("%d acquired, %d out of subnets; want 4 and 2", ok, out)
		}
		if ls, _, err := st.List(ctx, false); err != nil || len(ls) != 4 {
			t.Errorf("listed %d leases (%v), want 4", len(ls), err)
		}
	})
}

func TestRestartKeepsSubnet(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.9.0.0/16","Backend":{"Type":"vxlan"}}`)
		first := mustAcquire(t, ctx, newManager(t, st, 1, lease.ManagerOptions{}), cfg, nodeAttrs(1), netip.Prefix{})
		// Same public IP, new MAC, other random seed: same subnet, new value.
		again := nodeAttrs(1)
		again.BackendData = []byte(`{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:ee"}`)
		second := mustAcquire(t, ctx, newManager(t, st, 2, lease.ManagerOptions{}), cfg, again, netip.Prefix{})
		if second.Subnet != first.Subnet {
			t.Errorf("restart with the same public IP got %s, first had %s", second.Subnet, first.Subnet)
		}
		ls, _, _ := st.List(ctx, false)
		if len(ls) != 1 || string(ls[0].Attrs.BackendData) != string(again.BackendData) {
			t.Errorf("after reuse listed %+v, want one lease with the new MAC", ls)
		}

		// A new public IP and only subnet.env to go by: the lease of the old
		// IP has gone (expired), so the previous subnet comes back.
		env := filepath.Join(t.TempDir(), "subnet.env")
		if err := lease.WriteSubnetEnv(env, lease.SubnetEnv{Network: cfg.Network, Subnet: second.Subnet, MTU: 1450}); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, second); err != nil {
			t.Fatal(err)
		}
		prev, err := lease.ReadSubnetEnv(env)
		if err != nil {
			t.Fatal(err)
		}
		third := mustAcquire(t, ctx, newManager(t, st, 3, lease.ManagerOptions{}), cfg, nodeAttrs(2), prev.Subnet)
		if third.Subnet != first.Subnet {
			t.Errorf("restart with subnet.env %s got %s", prev.Subnet, third.Subnet)
		}
		// While another node holds it, the previous subnet is not taken.
		fourth := mustAcquire(t, ctx, newManager(t, st, 4, lease.ManagerOptions{}), cfg, nodeAttrs(3), prev.Subnet)
		if fourth.Subnet == third.Subnet {
			t.Errorf("node 3 took %s from subnet.env although node 2 holds it", fourth.Subnet)
		}
		// A config that no longer admits the lease: it is deleted and replaced.
		cfg2 := mustConfig(t, `{"Network":"10.9.0.0/16","SubnetLen":25,"Backend":{"Type":"vxlan"}}`)
		fifth := mustAcquire(t, ctx, newManager(t, st, 5, lease.ManagerOptions{}), cfg2, nodeAttrs(3), netip.Prefix{})
		if fifth.Subnet.Bits() != 25 {
			t.Errorf("after the config change got %s, want a /25", fifth.Subnet)
		}
		ls, _, _ = st.List(ctx, false)
		for _, l := range ls {
			if l.Subnet == fourth.Subnet {
				t.Errorf("incompatible lease %s still listed", fmtIP(l))
			}
		}
	})
}

// keep runs m.Keep in the background until the test ends and reports the
// leases it re-acquired.
func keep(t *testing.T, m *lease.Manager, cfg *lease.Config, l lease.Lease, attrs lease.Attrs) <-chan lease.Lease {
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan lease.Lease, 16)
	done := make(chan error, 1)
	go func() { done <- m.Keep(ctx, cfg, l, attrs, func(nl lease.Lease) { changes <- nl }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Keep returned %v, want context.Canceled", err)
		}
	})
	return changes
}

func TestKeepReacquiresDeletedLease(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.10.0.0/16","Backend":{"Type":"vxlan"}}`)
		m := newManager(t, st, 1, lease.ManagerOptions{})
		l := mustAcquire(t, ctx, m, cfg, nodeAttrs(1), netip.Prefix{})
		other := startWatcher(t, st, netip.Prefix{}) // another node's view
		eventually(t, "the other node to see the lease", func() bool { return other.matches(t, st, netip.Prefix{}) })
		changes := keep(t, m, cfg, l, nodeAttrs(1))

		if _, err := cli.Delete(ctx, "/coreos.com/network/subnets/"+strings.ReplaceAll(l.Subnet.String(), "/", "-")); err != nil {
			t.Fatal(err)
		}
		select {
		case nl := <-changes:
			if nl.Subnet != l.Subnet || nl.Attrs.PublicIP != l.Attrs.PublicIP {
				t.Errorf("re-acquired %s, want the same free subnet %s", fmtIP(nl), fmtIP(l))
			}
		case <-ctx.Done():
			t.Fatal("Keep did not re-acquire the deleted lease")
		}
		// The view before the delete and after the re-acquire is the same
		// (same subnet, same attrs), so wait for the events themselves, not
		// for the view to match: that could pass before they arrived.
		var seq []string
		eventually(t, "the other node to see the lease go and come back", func() bool {
			seq = seq[:0]
			for _, ev := range other.events() {
				if ev.Lease.Subnet == l.Subnet {
					seq = append(seq, ev.Type.String())
				}
			}
			return len(seq) >= 3
		})
		for _, ev := range other.events() {
			if ev.Lease.Subnet == l.Subnet && !ev.Lease.Attrs.PublicIP.IsValid() {
				t.Errorf("%s event without attrs", ev.Type)
			}
		}
		if !other.matches(t, st, netip.Prefix{}) {
			t.Error("the other node's view does not match the store after the re-acquire")
		}
		if strings.Join(seq, ",") != "added,removed,added" {
			t.Errorf("other node saw %v for %s, want added,removed,added", seq, l.Subnet)
		}
	})
}

func TestKeepRenews(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.11.0.0/16","Backend":{"Type":"vxlan"}}`)
		// A 3 s lease renewed 2 s before expiry: about every second.
		var renewed atomic.Int32
		m := newManager(t, st, 1, lease.ManagerOptions{TTL: 3 * time.Second, RenewMargin: 2 * time.Second,
			OnRenew: func(lease.Lease) { renewed.Add(1) }})
		l := mustAcquire(t, ctx, m, cfg, nodeAttrs(1), netip.Prefix{})
		key := "/coreos.com/network/subnets/" + strings.ReplaceAll(l.Subnet.String(), "/", "-")
		get := func() (clientv3.LeaseID, int64) {
			r, err := cli.Get(ctx, key)
			if err != nil || len(r.Kvs) != 1 {
				return clientv3.NoLease, 0
			}
			return clientv3.LeaseID(r.Kvs[0].Lease), r.Kvs[0].ModRevision
		}
		first, _ := get()
		changes := keep(t, m, cfg, l, nodeAttrs(1))
		// Outlive the first etcd lease: without renewal the key dies with it.
		eventually(t, "the first etcd lease to expire", func() bool {
			r, err := cli.TimeToLive(ctx, first)
			return err == nil && r.TTL == -1
		})
		id, rev := get()
		if id == clientv3.NoLease || id == first {
			t.Fatalf("after the first etcd lease expired the key has lease %x (first %x): not renewed", id, first)
		}
		eventually(t, "another renewal", func() bool { id2, rev2 := get(); return id2 != id && rev2 > rev })
		if renewed.Load() < 2 {
			t.Errorf("OnRenew called %d times after two renewals", renewed.Load())
		}
		select {
		case nl := <-changes:
			t.Errorf("Keep re-acquired (%s) instead of renewing", fmtIP(nl))
		default:
		}
		// Each renewal grants a 3 s etcd lease; a renewal storm would leave
		// hundreds alive, a steady renewal a handful.
		live, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(live.Leases); n > 10 {
			t.Errorf("%d etcd leases alive: renewing far more often than once per second", n)
		}
	})
}

// TestKeepRepublishes: Republish makes a running Keep write the new attrs
// into the kept key at once, and a lease re-acquired later carries them too.
func TestKeepRepublishes(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.12.0.0/16","Backend":{"Type":"vxlan"}}`)
		m := newManager(t, st, 1, lease.ManagerOptions{})
		l := mustAcquire(t, ctx, m, cfg, nodeAttrs(1), netip.Prefix{})
		changes := keep(t, m, cfg, l, nodeAttrs(1))
		key := lease.SubnetKey(lease.DefaultPrefix, l.Subnet, netip.Prefix{})
		value := func() []byte {
			r, err := cli.Get(ctx, key)
			if err != nil || len(r.Kvs) != 1 {
				return nil
			}
			return r.Kvs[0].Value
		}
		next := lease.NewVXLANAttrs(nodeAttrs(1).PublicIP, 1, net.HardwareAddr{0x02, 0xfe, 9, 9, 9, 9})
		want, err := json.Marshal(next)
		if err != nil {
			t.Fatal(err)
		}
		// The first is superseded before Keep takes it, or written and then replaced.
		m.Republish(lease.NewVXLANAttrs(nodeAttrs(1).PublicIP, 1, net.HardwareAddr{0x02, 0xfe, 8, 8, 8, 8}))
		m.Republish(next)
		eventually(t, "the new attrs in etcd", func() bool { return bytes.Equal(value(), want) })

		if _, err := cli.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		select {
		case nl := <-changes:
			if _, mac, err := nl.Attrs.VXLAN(); err != nil || mac.String() != "02:fe:09:09:09:09" {
				t.Fatalf("re-acquired lease has VtepMAC %v (%v), want the republished 02:fe:09:09:09:09", mac, err)
			}
		case <-ctx.Done():
			t.Fatal("Keep did not re-acquire the deleted lease")
		}
		eventually(t, "the re-acquired key with the new attrs", func() bool { return bytes.Equal(value(), want) })
	})
}

// TestAcquireSkipsBrokenKeyAtPrev: the subnet from subnet.env holds a key
// whose value does not parse (List skips it, so it looks free); the create
// loses once and Acquire moves on to another subnet instead of failing.
func TestAcquireSkipsBrokenKeyAtPrev(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, `{"Network":"10.12.0.0/16","Backend":{"Type":"vxlan"}}`)
		prev := netip.MustParsePrefix("10.12.7.0/24")
		if _, err := cli.Put(ctx, "/coreos.com/network/subnets/10.12.7.0-24", "not json"); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, st, 1, lease.ManagerOptions{})
		l := mustAcquire(t, ctx, m, cfg, nodeAttrs(1), prev)
		if l.Subnet == prev || !cfg.Contains(l.Subnet) {
			t.Fatalf("got %s, want another subnet of the pool than the broken %s", l.Subnet, prev)
		}
	})
}

// acquireAll has n managers (seeds 0..n-1) acquire a lease at once with
// attrs(i), as n nodes starting together would; it returns each one's lease
// and error by index.
func acquireAll(t *testing.T, ctx context.Context, st lease.Store, cfg *lease.Config, n int, attrs func(int) lease.Attrs) ([]lease.Lease, []error) {
	got := make([]lease.Lease, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = newManager(t, st, uint64(i), lease.ManagerOptions{}).Acquire(ctx, cfg, attrs(i), netip.Prefix{})
		})
	}
	wg.Wait()
	return got, errs
}

// checkAcquired checks what acquireAll got under cfg: no error, each family
// cfg runs inside its pool, no subnet given twice. It returns which node got
// each subnet.
func checkAcquired(t *testing.T, cfg *lease.Config, got []lease.Lease, errs []error) map[netip.Prefix]int {
	t.Helper()
	seen := map[netip.Prefix]int{} // IPv4 and IPv6 subnets never collide
	check := func(i int, sn netip.Prefix, inPool func(netip.Prefix) bool) {
		if !inPool(sn) {
			t.Errorf("node %d got %s outside the pool", i, sn)
		}
		if j, dup := seen[sn]; dup {
			t.Errorf("nodes %d and %d both got %s", j, i, sn)
		}
		seen[sn] = i
	}
	for i, l := range got {
		if errs[i] != nil {
			t.Errorf("node %d: %v", i, errs[i])
			continue
		}
		if cfg.EnableIPv4 {
			check(i, l.Subnet, cfg.Contains)
		}
		if cfg.EnableIPv6 {
			check(i, l.IPv6Subnet, cfg.ContainsIPv6)
		}
	}
	return seen
}
