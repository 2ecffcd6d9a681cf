package etcdstore_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const dualConfig = `{"Network":"10.7.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:7::/48","Backend":{"Type":"vxlan"}}`

// dualAttrs is node i's dual-stack vxlan value: distinct addresses and MACs.
func dualAttrs(i int) lease.Attrs {
	ip := netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
	ip6 := netip.AddrFrom16([16]byte{0xfd, 0xee, 14: byte(i >> 8), 15: byte(i)})
	return lease.NewDualVXLANAttrs(ip, ip6, 1,
		net.HardwareAddr{0x02, 0xfe, 0, 0, byte(i >> 8), byte(i)},
		net.HardwareAddr{0x02, 0xf6, 0, 0, byte(i >> 8), byte(i)})
}

// The key and value flanneld's etcd registry writes for a dual-stack vxlan
// node: <IPv4>-<len>&<IPv6>-<len>, PublicIPv6 and BackendV6Data.
func TestDualStackLeaseIsFlanneldShape(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		mac4, _ := net.ParseMAC("c6:d2:32:6f:8f:44")
		mac6, _ := net.ParseMAC("9e:11:0a:5b:c3:01")
		l := lease.Lease{Subnet: netip.MustParsePrefix("10.5.52.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:34::/64"),
			Attrs: lease.NewDualVXLANAttrs(netip.MustParseAddr("192.168.64.3"), netip.MustParseAddr("fd00:64::3"), 1, mac4, mac6)}
		if _, _, err := st.Create(ctx, l, lease.TTL); err != nil {
			t.Fatal(err)
		}
		const key = "/coreos.com/network/subnets/10.5.52.0-24&fd00:5:0:34::-64"
		const want = `{"PublicIP":"192.168.64.3","PublicIPv6":"fd00:64::3","BackendType":"vxlan",` +
			`"BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"9e:11:0a:5b:c3:01"}}`
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get %s: %v %v", key, resp, err)
		}
		if got := string(resp.Kvs[0].Value); got != want {
			t.Errorf("value at %s:\n got %s\nwant %s", key, got, want)
		}
		got, found, _, err := st.Get(ctx, l.Subnet, l.IPv6Subnet)
		if err != nil || !found || got.IPv6Subnet != l.IPv6Subnet || !got.Attrs.PublicIPv6.IsValid() {
			t.Fatalf("Get: %+v %v %v", got, found, err)
		}
		if _, m6, err := got.Attrs.VXLAN6(); err != nil || m6.String() != mac6.String() {
			t.Errorf("VXLAN6: %v %v", m6, err)
		}
	})
}

// The create Txn guards the IPv4 subnet across key shapes: a dual-stack key
// may not take an IPv4 subnet an IPv4-only key holds, nor one another
// dual-stack key holds with another IPv6 subnet, and the reverse.
func TestCreateGuardsIPv4AcrossKeyShapes(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		sn := netip.MustParsePrefix("10.7.5.0/24")
		a := lease.Lease{Subnet: sn, Attrs: nodeAttrs(1)}
		if _, _, err := st.Create(ctx, a, lease.TTL); err != nil {
			t.Fatal(err)
		}
		b := lease.Lease{Subnet: sn, IPv6Subnet: netip.MustParsePrefix("fd00:7:0:5::/64"), Attrs: dualAttrs(2)}
		if _, _, err := st.Create(ctx, b, lease.TTL); !errors.Is(err, lease.ErrSubnetTaken) {
			t.Errorf("dual-stack create over an IPv4-only key of the same subnet: %v, want ErrSubnetTaken", err)
		}
		sn2 := netip.MustParsePrefix("10.7.6.0/24")
		c := lease.Lease{Subnet: sn2, IPv6Subnet: netip.MustParsePrefix("fd00:7:0:6::/64"), Attrs: dualAttrs(3)}
		if _, _, err := st.Create(ctx, c, lease.TTL); err != nil {
			t.Fatal(err)
		}
		d := lease.Lease{Subnet: sn2, IPv6Subnet: netip.MustParsePrefix("fd00:7:0:7::/64"), Attrs: dualAttrs(4)}
		if _, _, err := st.Create(ctx, d, lease.TTL); !errors.Is(err, lease.ErrSubnetTaken) {
			t.Errorf("dual-stack create of a held IPv4 subnet with another IPv6 subnet: %v, want ErrSubnetTaken", err)
		}
		e := lease.Lease{Subnet: sn2, Attrs: nodeAttrs(5)}
		if _, _, err := st.Create(ctx, e, lease.TTL); !errors.Is(err, lease.ErrSubnetTaken) {
			t.Errorf("IPv4-only create of a subnet a dual-stack key holds: %v, want ErrSubnetTaken", err)
		}
		ls, _, _ := st.List(ctx, false)
		if len(ls) != 2 {
			t.Errorf("listed %d leases, want 2: %+v", len(ls), ls)
		}
	})
}

// Many dual-stack nodes at once: every one gets both families, all unique.
func TestConcurrentAcquireDualStack(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, dualConfig)
		const n = 60
		got, errs := acquireAll(t, ctx, st, cfg, n, dualAttrs)
		checkAcquired(t, cfg, got, errs)
		ls, _, _ := st.List(ctx, false)
		if len(ls) != n {
			t.Errorf("%d keys stored, want %d", len(ls), n)
		}
	})
}

// A restart keeps both subnets: by PublicIP while the key lives, from
// subnet.env's FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET once it has gone.
func TestRestartKeepsBothSubnets(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, dualConfig)
		first := mustAcquire(t, ctx, newManager(t, st, 1, lease.ManagerOptions{}), cfg, dualAttrs(1), netip.Prefix{})
		second := mustAcquire(t, ctx, newManager(t, st, 2, lease.ManagerOptions{}), cfg, dualAttrs(1), netip.Prefix{})
		if second.Subnet != first.Subnet || second.IPv6Subnet != first.IPv6Subnet {
			t.Errorf("restart got %s & %s, first had %s & %s", second.Subnet, second.IPv6Subnet, first.Subnet, first.IPv6Subnet)
		}
		if err := st.Delete(ctx, second); err != nil {
			t.Fatal(err)
		}
		// Other seeds would pick other subnets; prev brings both back.
		third, err := newManager(t, st, 3, lease.ManagerOptions{}).AcquirePrev(ctx, cfg, dualAttrs(2), first)
		if err != nil {
			t.Fatal(err)
		}
		if third.Subnet != first.Subnet || third.IPv6Subnet != first.IPv6Subnet {
			t.Errorf("restart from subnet.env got %s & %s, want %s & %s", third.Subnet, third.IPv6Subnet, first.Subnet, first.IPv6Subnet)
		}
		// IPv6 turned off: the dual-stack key no longer fits the config
		// (flanneld's isIPv6SubnetConfigCompat) and is replaced by an
		// IPv4-only one.
		cfg4 := mustConfig(t, `{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}`)
		fourth := mustAcquire(t, ctx, newManager(t, st, 4, lease.ManagerOptions{}), cfg4, dualAttrs(2), netip.Prefix{})
		if fourth.IPv6Subnet.IsValid() {
			t.Errorf("with IPv6 off got %s & %s", fourth.Subnet, fourth.IPv6Subnet)
		}
		ls, _, _ := st.List(ctx, false)
		if len(ls) != 1 || ls[0].IPv6Subnet.IsValid() {
			t.Errorf("after IPv6 was turned off: %+v, want one IPv4-only lease", ls)
		}
	})
}

// hideOnce hides one key from the first List, as if another node's create
// landed between that list and this node's create.
type hideOnce struct {
	lease.Store
	hide   netip.Prefix
	hidden atomic.Bool
}

func (h *hideOnce) List(ctx context.Context, withExpiry bool) ([]lease.Lease, int64, error) {
	ls, rev, err := h.Store.List(ctx, withExpiry)
	if err != nil || h.hidden.Swap(true) {
		return ls, rev, err
	}
	out := ls[:0]
	for _, l := range ls {
		if l.Subnet != h.hide {
			out = append(out, l)
		}
	}
	return out, rev, nil
}

// Two nodes that pick one IPv6 subnet under different IPv4 subnets write
// different keys, so the Txn alone cannot see it: the later one finds the
// other holder on a fresh list, gives its key up and takes another.
func TestAcquireLosesIPv6Race(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		cfg := mustConfig(t, dualConfig)
		other := lease.Lease{Subnet: netip.MustParsePrefix("10.7.9.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:7:0:3::/64"), Attrs: dualAttrs(9)}
		if _, _, err := st.Create(ctx, other, lease.TTL); err != nil {
			t.Fatal(err)
		}
		prev := lease.Lease{Subnet: netip.MustParsePrefix("10.7.3.0/24"), IPv6Subnet: other.IPv6Subnet}
		h := &hideOnce{Store: st, hide: other.Subnet}
		got, err := newManager(t, h, 1, lease.ManagerOptions{}).AcquirePrev(ctx, cfg, dualAttrs(1), prev)
		if err != nil {
			t.Fatal(err)
		}
		if got.IPv6Subnet == other.IPv6Subnet {
			t.Fatalf("took %s, which %s holds", got.IPv6Subnet, other.Subnet)
		}
		ls, _, _ := st.List(ctx, false)
		if len(ls) != 2 {
			t.Errorf("listed %+v, want the other node's lease and ours", ls)
		}
		for _, l := range ls {
			if l.Subnet == prev.Subnet && l.IPv6Subnet == prev.IPv6Subnet {
				t.Errorf("the losing key %s & %s was not deleted", l.Subnet, l.IPv6Subnet)
			}
		}
	})
}
