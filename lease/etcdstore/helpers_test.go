package etcdstore_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/feltnet/felt/internal/testwait"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/lease/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
)

// Helpers of every test file in this package. Tests that need etcd run
// against every kind etcdtest selects (embedded, and Debian's etcd 3.4
// binary); see etcdtest.Run.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T, s *etcdtest.Server) (*clientv3.Client, *etcdstore.Store) {
	cli := s.Client(t)
	return cli, etcdstore.New(cli, lease.DefaultPrefix, etcdstore.Options{Logger: zaptest.NewLogger(t)})
}

// runStore runs test against every etcd kind etcdtest.Run selects, each time
// with a store on a fresh server, its client and a testCtx context.
func runStore(t *testing.T, test func(t *testing.T, ctx context.Context, cli *clientv3.Client, st *etcdstore.Store)) {
	etcdtest.Run(t, func(t *testing.T, s *etcdtest.Server) {
		ctx := testCtx(t)
		cli, st := newStore(t, s)
		test(t, ctx, cli, st)
	})
}

func mustConfig(t *testing.T, js string) *lease.Config {
	t.Helper()
	cfg, err := lease.ParseConfig([]byte(js))
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", js, err)
	}
	return cfg
}

// nodeAttrs is the vxlan value node i publishes: a distinct public IP and MAC.
func nodeAttrs(i int) lease.Attrs {
	ip := netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
	mac := net.HardwareAddr{0x02, 0xfe, 0, 0, byte(i >> 8), byte(i)}
	return lease.NewVXLANAttrs(ip, 1, mac)
}

// eventually polls cond until it holds or the deadline passes (a liveness
// bound, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, 30*time.Second, 20*time.Millisecond, cond)
}

// fmtIP is a short helper for failure messages.
func fmtIP(l lease.Lease) string { return fmt.Sprintf("%s@%s", l.Subnet, l.Attrs.PublicIP) }
