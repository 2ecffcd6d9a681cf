package etcdstore_test

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const ipv6OnlyConfig = `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:7::/48","Backend":{"Type":"vxlan"}}`

// v6OnlyAttrs is node i's IPv6-only vxlan value: PublicIP 0.0.0.0, no
// BackendData, as flanneld's vxlan backend writes with EnableIPv4 false.
func v6OnlyAttrs(i int) lease.Attrs {
	ip6 := netip.AddrFrom16([16]byte{0xfd, 0xee, 14: byte(i >> 8), 15: byte(i)})
	return lease.NewDualVXLANAttrs(netip.Addr{}, ip6, 1, nil, net.HardwareAddr{0x02, 0xf6, 0, 0, byte(i >> 8), byte(i)})
}

// The key and value of an IPv6-only node, as flanneld's etcd registry
// writes them: 0.0.0.0-0&<IPv6>-<len>, PublicIP "0.0.0.0".
func TestIPv6OnlyLeaseIsFlanneldShape(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, ipv6OnlyConfig)
		l := mustAcquire(t, ctx, newManager(t, st, 1, lease.ManagerOptions{}), cfg, v6OnlyAttrs(3), netip.Prefix{})
		if l.Subnet.IsValid() || !cfg.ContainsIPv6(l.IPv6Subnet) {
			t.Fatalf("acquired %s & %s, want no IPv4 subnet and an IPv6 one in the pool", l.Subnet, l.IPv6Subnet)
		}
		resp, err := cli.Get(ctx, "/coreos.com/network/subnets/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("list: %v %v", resp, err)
		}
		key := string(resp.Kvs[0].Key)
		if want := "/coreos.com/network/subnets/0.0.0.0-0&" + l.IPv6Subnet.Addr().String() + "-64"; key != want {
			t.Errorf("key %q, want %q", key, want)
		}
		if !regexp.MustCompile(`^/coreos.com/network/subnets/0\.0\.0\.0-0&fd00:7:0:[0-9a-f]+::-64$`).MatchString(key) {
			t.Errorf("key %q is not flanneld's IPv6-only shape", key)
		}
		const want = `{"PublicIP":"0.0.0.0","PublicIPv6":"fdee::3","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"02:f6:00:00:00:03"}}`
		if got := string(resp.Kvs[0].Value); got != want {
			t.Errorf("value:\n got %s\nwant %s", got, want)
		}
		got, found, _, err := st.Get(ctx, netip.Prefix{}, l.IPv6Subnet)
		if err != nil || !found || got.Subnet.IsValid() || got.IPv6Subnet != l.IPv6Subnet || got.Attrs.PublicIPv6 != v6OnlyAttrs(3).PublicIPv6 {
			t.Errorf("Get: %+v %v %v", got, found, err)
		}
	})
}

// Several IPv6-only nodes at once each get their own IPv6 subnet (every key
// starts 0.0.0.0-0&, which must not make them exclude each other); a
// restart finds its lease by PublicIPv6 (all PublicIPs are 0.0.0.0), and
// from subnet.env's FLANNEL_IPV6_SUBNET once the key has gone.
func TestIPv6OnlyAcquireAndRestart(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, ipv6OnlyConfig)
		const n = 12
		got, errs := acquireAll(t, ctx, st, cfg, n, v6OnlyAttrs)
		if checkAcquired(t, cfg, got, errs); t.Failed() {
			t.FailNow()
		}
		again, err := newManager(t, st, 99, lease.ManagerOptions{}).Acquire(ctx, cfg, v6OnlyAttrs(5), netip.Prefix{})
		if err != nil || again.IPv6Subnet != got[5].IPv6Subnet {
			t.Errorf("restart of node 5 got %s (%v), want its lease %s", again.IPv6Subnet, err, got[5].IPv6Subnet)
		}
		if err := st.Delete(ctx, got[5]); err != nil {
			t.Fatal(err)
		}
		prev, err := newManager(t, st, 100, lease.ManagerOptions{}).AcquirePrev(ctx, cfg, v6OnlyAttrs(5), lease.Lease{IPv6Subnet: got[5].IPv6Subnet})
		if err != nil || prev.IPv6Subnet != got[5].IPv6Subnet {
			t.Errorf("restart from subnet.env got %s (%v), want %s", prev.IPv6Subnet, err, got[5].IPv6Subnet)
		}
		if ls, _, _ := st.List(ctx, false); len(ls) != n {
			t.Errorf("%d keys, want %d", len(ls), n)
		}
	})
}

// Watch with an IPv6-only lease's Key reports that key only.
func TestIPv6OnlyWatchOwnKey(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		a := lease.Lease{IPv6Subnet: netip.MustParsePrefix("fd00:7:0:1::/64"), Attrs: v6OnlyAttrs(1)}
		b := lease.Lease{IPv6Subnet: netip.MustParsePrefix("fd00:7:0:2::/64"), Attrs: v6OnlyAttrs(2)}
		_, rev, err := st.Create(ctx, a, lease.TTL)
		if err != nil {
			t.Fatal(err)
		}
		wch := st.Watch(ctx, a.Key(), rev+1, false)
		if _, _, err := st.Create(ctx, b, lease.TTL); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Update(ctx, a, lease.TTL); err != nil {
			t.Fatal(err)
		}
		r := <-wch
		if r.Err != nil || len(r.Events) != 1 || r.Events[0].Lease.IPv6Subnet != a.IPv6Subnet || r.Events[0].Lease.Subnet.IsValid() {
			t.Errorf("own-key watch: %+v, want one event for %s", r, a.IPv6Subnet)
		}
	})
}

// Keep holds an IPv6-only lease: it renews the 0.0.0.0-0&… key (a new etcd
// lease on it), and after the key is deleted it takes the same IPv6 subnet
// back, found by its own-key watch.
func TestIPv6OnlyKeep(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, ipv6OnlyConfig)
		m := newManager(t, st, 1, lease.ManagerOptions{TTL: 3 * time.Second, RenewMargin: 2 * time.Second})
		l := mustAcquire(t, ctx, m, cfg, v6OnlyAttrs(1), netip.Prefix{})
		key := lease.SubnetKey(lease.DefaultPrefix, netip.Prefix{}, l.IPv6Subnet)
		leaseOf := func() clientv3.LeaseID {
			r, err := cli.Get(ctx, key)
			if err != nil || len(r.Kvs) != 1 {
				return clientv3.NoLease
			}
			return clientv3.LeaseID(r.Kvs[0].Lease)
		}
		first := leaseOf()
		changes := keep(t, m, cfg, l, v6OnlyAttrs(1))
		eventually(t, "a renewal of the IPv6-only key", func() bool { id := leaseOf(); return id != clientv3.NoLease && id != first })
		select {
		case nl := <-changes:
			t.Fatalf("Keep re-acquired (%s) instead of renewing", nl.IPv6Subnet)
		default:
		}
		if _, err := cli.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		select {
		case nl := <-changes:
			if nl.Subnet.IsValid() || nl.IPv6Subnet != l.IPv6Subnet {
				t.Errorf("re-acquired %s & %s, want the same IPv6 subnet %s alone", nl.Subnet, nl.IPv6Subnet, l.IPv6Subnet)
			}
		case <-ctx.Done():
			t.Fatal("Keep did not re-acquire the deleted IPv6-only lease")
		}
	})
}
