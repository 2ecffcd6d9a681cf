package e2e

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
)

// TestFaultEtcdMemberKilledRenews is the renewal half of the member-kill
// fault at a speed the default run affords: lease.Manager.Keep with a 6 s
// TTL renewed every 2 s, on a 3-member etcd whose leader is SIGKILLed. The
// key must exist at every poll for three TTLs after the kill (a missed
// renewal would let it expire), and renewals must continue after the kill.
// It needs no root: the members listen on loopback.
func TestFaultEtcdMemberKilledRenews(t *testing.T) {
	ec := newEtcdCluster(t, netip.MustParseAddr("127.0.0.1"), 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli, err := etcdstore.NewClient(ctx, etcdstore.ClientOptions{Endpoints: ec.endpoints(), Logger: zaptest.NewLogger(t).Named("cli")})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	store := etcdstore.New(cli, "", etcdstore.Options{RequestTimeout: 3 * time.Second})
	cfg, err := lease.ParseConfig([]byte(netConfig("vxlan")))
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 6 * time.Second
	var renewals atomic.Int64
	m, err := lease.NewManager(store, lease.ManagerOptions{TTL: ttl, RenewMargin: 4 * time.Second,
		RetryInterval: 300 * time.Millisecond, OnRenew: func(lease.Lease) { renewals.Add(1) },
		Logger: zaptest.NewLogger(t).Named("mgr")})
	if err != nil {
		t.Fatal(err)
	}
	attrs := lease.NewUDPAttrs(netip.MustParseAddr("192.0.2.9"))
	l, err := m.Acquire(ctx, cfg, attrs, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	kept := make(chan error, 1)
	go func() { kept <- m.Keep(ctx, cfg, l, attrs, func(lease.Lease) {}) }()
	key := keyOf(l.Subnet.String())

	li, err := ec.leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ec.members[li].kill()
	atKill := renewals.Load()
	t.Logf("killed leader %s; %d renewals before", ec.members[li].name, atKill)

	// A client of its own on the survivors, so that our polls do not wait
	// on the dead member.
	var eps []string
	for i, ep := range ec.endpoints() {
		if i != li {
			eps = append(eps, ep)
		}
	}
	poll, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer poll.Close()
	polls := 0
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); polls++ {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := poll.Get(pctx, key)
		pcancel()
		if err != nil {
			t.Logf("poll: %v (the survivors may be electing)", err)
		} else if len(resp.Kvs) != 1 {
			t.Fatalf("lease %s gone %d polls after the leader was killed: a renewal was missed", key, polls)
		}
		time.Sleep(200 * time.Millisecond)
	}
	after := renewals.Load() - atKill
	t.Logf("key present at all %d polls over %v after the kill; %d renewals since", polls, 3*ttl, after)
	if after < 2 {
		t.Fatalf("%d renewals in %v after the kill, want at least 2 (every %v)", after, 3*ttl, ttl-4*time.Second)
	}
	cancel()
	<-kept
}
