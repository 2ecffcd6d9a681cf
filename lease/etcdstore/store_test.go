package etcdstore_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLeaseValueIsFlanneldShape(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		mac, _ := net.ParseMAC("c6:d2:32:6f:8f:44")
		cases := []struct {
			l         lease.Lease
			key, want string
		}{
			{
				lease.Lease{Subnet: netip.MustParsePrefix("10.5.52.0/24"),
					Attrs: lease.NewVXLANAttrs(netip.MustParseAddr("192.168.64.3"), 1, mac)},
				"/coreos.com/network/subnets/10.5.52.0-24",
				`{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`,
			},
			{
				lease.Lease{Subnet: netip.MustParsePrefix("10.5.53.0/24"),
					Attrs: lease.NewUDPAttrs(netip.MustParseAddr("192.168.64.4"))},
				"/coreos.com/network/subnets/10.5.53.0-24",
				`{"PublicIP":"192.168.64.4","PublicIPv6":null}`,
			},
		}
		for _, c := range cases {
			if _, _, err := st.Create(ctx, c.l, lease.TTL); err != nil {
				t.Fatalf("create %s: %v", c.l.Subnet, err)
			}
			resp, err := cli.Get(ctx, c.key)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("get %s: %v %v", c.key, resp, err)
			}
			if got := string(resp.Kvs[0].Value); got != c.want {
				t.Errorf("value at %s:\n got %s\nwant %s", c.key, got, c.want)
			}
			ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
			if err != nil {
				t.Fatalf("ttl: %v", err)
			}
			if ttl.GrantedTTL != 86400 {
				t.Errorf("etcd lease of %s granted %d s, want 86400 (flanneld's 24 h)", c.key, ttl.GrantedTTL)
			}
		}
	})
}

func TestCreateTakenRevokesGrant(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		l := lease.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24"), Attrs: nodeAttrs(1)}
		got, rev, err := st.Create(ctx, l, lease.TTL)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if got.Expiration.IsZero() || rev == 0 {
			t.Errorf("create returned expiration %v, revision %d; want both set", got.Expiration, rev)
		}
		before, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l2 := lease.Lease{Subnet: l.Subnet, Attrs: nodeAttrs(2)}
		if _, _, err := st.Create(ctx, l2, lease.TTL); !errors.Is(err, lease.ErrSubnetTaken) {
			t.Fatalf("second create of %s: err = %v, want ErrSubnetTaken", l.Subnet, err)
		}
		after, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Leases) != len(before.Leases) {
			t.Errorf("etcd leases %d -> %d after a failed create: grant not revoked", len(before.Leases), len(after.Leases))
		}
		// Update overwrites regardless; the value is node 2's now.
		if _, _, err := st.Update(ctx, l2, lease.TTL); err != nil {
			t.Fatalf("update: %v", err)
		}
		ls, _, err := st.List(ctx, true)
		if err != nil || len(ls) != 1 || ls[0].Attrs.PublicIP != l2.Attrs.PublicIP {
			t.Fatalf("list after update = %+v, %v; want one lease of %s", ls, err, l2.Attrs.PublicIP)
		}
		if d := time.Until(ls[0].Expiration); d < 23*time.Hour || d > 25*time.Hour {
			t.Errorf("listed expiration in %s, want about 24h", d)
		}
		if err := st.Delete(ctx, l2); err != nil {
			t.Fatal(err)
		}
		if ls, _, _ := st.List(ctx, false); len(ls) != 0 {
			t.Errorf("list after delete = %v, want empty", ls)
		}
	})
}

func TestMalformedSkippedAndCounted(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		good := lease.Lease{Subnet: netip.MustParsePrefix("10.5.7.0/24"), Attrs: nodeAttrs(7)}
		if _, _, err := st.Create(ctx, good, lease.TTL); err != nil {
			t.Fatal(err)
		}
		// A reservation: a key without an etcd lease.
		if _, err := cli.Put(ctx, "/coreos.com/network/subnets/10.5.8.0-24", `{"PublicIP":"192.168.0.8","PublicIPv6":null}`); err != nil {
			t.Fatal(err)
		}
		// Watch from now on, to see the watch path skip bad ones too.
		_, rev, err := st.List(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wch := st.Watch(wctx, netip.Prefix{}, rev+1, true)
		for k, v := range map[string]string{
			"/coreos.com/network/subnets/garbage":      `{"PublicIP":"192.168.0.9"}`,
			"/coreos.com/network/subnets/10.5.9.0-24":  `not json`,
			"/coreos.com/network/subnets/10.5.10.0-24": `{"PublicIP":"fd00::1"}`,
		} {
			if _, err := cli.Put(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
		last := lease.Lease{Subnet: netip.MustParsePrefix("10.5.11.0/24"), Attrs: nodeAttrs(11)}
		if _, _, err := st.Create(ctx, last, lease.TTL); err != nil {
			t.Fatal(err)
		}
		// The watch delivers only the good lease, after skipping three.
		var seen []lease.Event
		for len(seen) == 0 {
			r := <-wch
			if r.Err != nil {
				t.Fatalf("watch: %v", r.Err)
			}
			seen = append(seen, r.Events...)
		}
		if len(seen) != 1 || seen[0].Type != lease.Added || seen[0].Lease.Subnet != last.Subnet {
			t.Errorf("watch events = %+v, want one Added for %s", seen, last.Subnet)
		}
		if got := st.Malformed(); got != 3 {
			t.Errorf("Malformed() after the watch = %d, want 3", got)
		}
		ls, _, err := st.List(ctx, true)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var subnets []string
		for _, l := range ls {
			subnets = append(subnets, l.Subnet.String())
			if l.Subnet.String() == "10.5.8.0/24" && !l.Expiration.IsZero() {
				t.Errorf("reservation has expiration %v, want zero", l.Expiration)
			}
		}
		if got := strings.Join(subnets, " "); got != "10.5.11.0/24 10.5.7.0/24 10.5.8.0/24" {
			t.Errorf("listed %q, want the three good leases", got)
		}
		if got := st.Malformed(); got != 6 {
			t.Errorf("Malformed() after the list = %d, want 6", got)
		}
	})
}

func TestConfigRoundTrip(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		_, err := st.GetConfig(ctx)
		if !errors.Is(err, lease.ErrNoConfig) || !strings.Contains(err.Error(), "etcd v3 API") ||
			!strings.Contains(err.Error(), "/coreos.com/network/config") {
			t.Fatalf("GetConfig on an empty etcd: %v; want ErrNoConfig naming the key and the v3 API", err)
		}
		if err := st.PutConfig(ctx, []byte(`{"Network":"10.5.0.0/16","SubnetLen":33}`)); err == nil ||
			!strings.Contains(err.Error(), "SubnetLen") {
			t.Fatalf("PutConfig of SubnetLen 33: %v; want an error naming SubnetLen", err)
		}
		raw := `{"network":"10.5.0.0/16", "Backend":{"Type":"vxlan"}}`
		if err := st.PutConfig(ctx, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Get(ctx, "/coreos.com/network/config")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != raw {
			t.Fatalf("stored config = %v, %v; want verbatim %s", resp, err, raw)
		}
		cfg, err := st.GetConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Network.String() != "10.5.0.0/16" || cfg.SubnetLen != 24 || cfg.Backend.Type != "vxlan" {
			t.Errorf("GetConfig = %+v, want 10.5.0.0/16, /24, vxlan", cfg)
		}
	})
}

// TestStoreGet reads one lease with its expiry, and says when there is none.
func TestStoreGet(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store) {
		sn := netip.MustParsePrefix("10.13.4.0/24")
		if _, found, _, err := st.Get(ctx, sn, netip.Prefix{}); err != nil || found {
			t.Fatalf("Get of a missing key: found %v, %v", found, err)
		}
		if _, _, err := st.Create(ctx, lease.Lease{Subnet: sn, Attrs: nodeAttrs(4)}, lease.TTL); err != nil {
			t.Fatal(err)
		}
		l, found, rev, err := st.Get(ctx, sn, netip.Prefix{})
		if err != nil || !found || rev == 0 || l.Attrs.PublicIP != nodeAttrs(4).PublicIP {
			t.Fatalf("Get = %+v, %v, %d, %v", l, found, rev, err)
		}
		if left := time.Until(l.Expiration); left < lease.TTL-time.Minute || left > lease.TTL {
			t.Fatalf("expires in %v, want about %v", left, lease.TTL)
		}
		if _, err := cli.Put(ctx, "/coreos.com/network/subnets/10.13.5.0-24", "garbage"); err != nil {
			t.Fatal(err)
		}
		if l, found, _, err := st.Get(ctx, netip.MustParsePrefix("10.13.5.0/24"), netip.Prefix{}); err != nil || !found || l.Attrs.PublicIP.IsValid() {
			t.Fatalf("Get of a malformed value = %+v, %v, %v; want found with no attrs", l, found, err)
		}
	})
}
