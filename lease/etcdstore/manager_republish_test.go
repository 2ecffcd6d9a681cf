package etcdstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"testing"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
