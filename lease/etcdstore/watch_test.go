package etcdstore_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/lease/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
)

// view is what a consumer of WatchLeases builds from the events.
type view struct {
	mu     sync.Mutex
	leases map[netip.Prefix]lease.Lease
	log    []lease.Event
}

func newView() *view { return &view{leases: map[netip.Prefix]lease.Lease{}} }

func (v *view) emit(evs []lease.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ev := range evs {
		v.log = append(v.log, ev)
		switch ev.Type {
		case lease.Added:
			v.leases[ev.Lease.Subnet] = ev.Lease
		case lease.Removed:
			delete(v.leases, ev.Lease.Subnet)
		}
	}
}

func (v *view) events() []lease.Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.log)
}

// matches reports whether the view equals a fresh listing, minus own.
func (v *view) matches(t *testing.T, st lease.Store, own netip.Prefix) bool {
	ls, _, err := st.List(context.Background(), false)
	if err != nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, l := range ls {
		if l.Subnet == own {
			continue
		}
		n++
		got, ok := v.leases[l.Subnet]
		if !ok || got.Attrs.PublicIP != l.Attrs.PublicIP || string(got.Attrs.BackendData) != string(l.Attrs.BackendData) {
			return false
		}
	}
	return n == len(v.leases)
}

func startWatcher(t *testing.T, st lease.Store, own netip.Prefix) *view {
	v := newView()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lease.NewWatcher(st, zaptest.NewLogger(t)).WatchLeases(ctx, own, v.emit) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchLeases returned %v, want context.Canceled", err)
		}
	})
	return v
}

// gatedStore is a real store whose watch streams the test can break, and
// whose next stream it can hold back, to make the watcher resume from a
// revision that has been compacted meanwhile.
type gatedStore struct {
	lease.Store
	mu        sync.Mutex
	gate      chan struct{} // when set, Watch waits for it to close
	cancel    context.CancelFunc
	compacted atomic.Int32
	lists     atomic.Int32
}

func (g *gatedStore) List(ctx context.Context, withExpiry bool) ([]lease.Lease, int64, error) {
	g.lists.Add(1)
	return g.Store.List(ctx, withExpiry)
}

func (g *gatedStore) Watch(ctx context.Context, only netip.Prefix, from int64, withExpiry bool) <-chan lease.WatchResponse {
	g.mu.Lock()
	gate := g.gate
	ctx, cancel := context.WithCancel(ctx)
	g.cancel = cancel
	g.mu.Unlock()
	out := make(chan lease.WatchResponse)
	go func() {
		defer close(out)
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return
			}
		}
		for r := range g.Store.Watch(ctx, only, from, withExpiry) {
			if errors.Is(r.Err, lease.ErrCompacted) {
				g.compacted.Add(1)
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// breakWatch ends the current stream; the next one waits for gate.
func (g *gatedStore) breakWatch(gate chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = gate
	if g.cancel != nil {
		g.cancel()
	}
}

func TestWatcherSurvivesCompactionAndRestart(t *testing.T) {
	etcdtest.Run(t, func(t *testing.T, s *etcdtest.Server) {
		ctx := testCtx(t)
		cli, es := newStore(t, s)
		st := &gatedStore{Store: es}
		mk := func(i int) lease.Lease {
			return lease.Lease{Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 6, byte(i), 0}), 24), Attrs: nodeAttrs(i)}
		}
		create := func(i int) {
			t.Helper()
			if _, _, err := es.Create(ctx, mk(i), lease.TTL); err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
		}
		own := mk(0).Subnet
		for i := range 4 {
			create(i)
		}
		v := startWatcher(t, st, own)
		eventually(t, "the initial view", func() bool { return v.matches(t, es, own) })

		// Compaction: break the stream, change things while the watcher
		// cannot watch, compact, then let it resume from its old revision.
		gate := make(chan struct{})
		st.breakWatch(gate)
		create(4)
		if err := es.Delete(ctx, mk(1)); err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Put(ctx, "/felttest/bump", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
			t.Fatalf("compact: %v", err)
		}
		lists := st.lists.Load()
		close(gate)
		eventually(t, "the view after compaction", func() bool { return v.matches(t, es, own) })
		if st.compacted.Load() == 0 || st.lists.Load() == lists {
			t.Errorf("the watcher did not meet the compaction (%d compacted responses, %d lists)",
				st.compacted.Load(), st.lists.Load()-lists)
		}

		// etcd restart on the same data dir: the watch resumes.
		s.Restart()
		create(5)
		if err := es.Delete(ctx, mk(2)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the view after an etcd restart", func() bool { return v.matches(t, es, own) })

		for _, ev := range v.events() {
			if ev.Lease.Subnet == own {
				t.Errorf("own subnet reported: %+v", ev)
			}
			if ev.Type == lease.Removed && !ev.Lease.Attrs.PublicIP.IsValid() {
				t.Errorf("Removed event without the cached attrs: %+v", ev)
			}
		}
	})
}

// TestWatcherSetOwnRelists: while our subnet A is own, another node takes A
// (after our key went) and its write is suppressed; when the keeper moves us
// to B and calls SetOwn(B), the watcher must report the node at A, and drop
// the peer it had cached at B.
func TestWatcherSetOwnRelists(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		mk := func(third byte, node int) lease.Lease {
			return lease.Lease{Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 7, third, 0}), 24), Attrs: nodeAttrs(node)}
		}
		a, b := mk(1, 0), mk(2, 1) // we hold A; a peer holds B
		for _, l := range []lease.Lease{a, b} {
			if _, _, err := st.Create(ctx, l, lease.TTL); err != nil {
				t.Fatal(err)
			}
		}
		v := newView()
		w := lease.NewWatcher(st, zaptest.NewLogger(t))
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.WatchLeases(wctx, a.Subnet, v.emit) }()
		defer func() { cancel(); <-done }()
		eventually(t, "the peer at B", func() bool { return v.matches(t, st, a.Subnet) })

		// Our key goes; node 2 takes A; the watcher suppresses it (own).
		if err := st.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Create(ctx, mk(1, 2), lease.TTL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		// The peer at B goes too, and we take B: SetOwn(B).
		if err := st.Delete(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Create(ctx, mk(2, 0), lease.TTL); err != nil {
			t.Fatal(err)
		}
		w.SetOwn(b.Subnet)
		eventually(t, "node 2 at A reported, nothing at B", func() bool {
			v.mu.Lock()
			got, okA := v.leases[a.Subnet]
			_, okB := v.leases[b.Subnet]
			v.mu.Unlock()
			return okA && got.Attrs.PublicIP == nodeAttrs(2).PublicIP && !okB
		})
	})
}

// TestWatcherListed: Listed closes after the first listing, also when it
// found no lease (and so emitted nothing), and only once the leases that
// existed at start were emitted; a later listing does not close it again.
func TestWatcherListed(t *testing.T) {
	runStore(t, func(t *testing.T, ctx context.Context, _ *clientv3.Client, st *etcdstore.Store) {
		own := netip.MustParsePrefix("10.7.9.0/24")
		watch := func(emit func([]lease.Event)) (*lease.Watcher, func()) {
			w := lease.NewWatcher(st, zaptest.NewLogger(t))
			wctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.WatchLeases(wctx, own, emit) }()
			return w, func() { cancel(); <-done }
		}
		wait := func(w *lease.Watcher) {
			t.Helper()
			select {
			case <-w.Listed():
			case <-ctx.Done():
				t.Fatal("Listed not closed after the first listing")
			}
		}

		v := newView()
		w, stop := watch(v.emit)
		wait(w) // an empty store: nothing emitted, Listed closed all the same
		stop()
		if len(v.log) != 0 {
			t.Fatalf("events for an empty store: %v", v.log)
		}

		peer := lease.Lease{Subnet: netip.MustParsePrefix("10.7.1.0/24"), Attrs: nodeAttrs(1)}
		if _, _, err := st.Create(ctx, peer, lease.TTL); err != nil {
			t.Fatal(err)
		}
		v = newView()
		w, stop = watch(v.emit)
		defer stop()
		wait(w)
		v.mu.Lock()
		_, ok := v.leases[peer.Subnet]
		v.mu.Unlock()
		if !ok {
			t.Fatal("Listed closed before the existing lease was emitted")
		}
		w.SetOwn(netip.MustParsePrefix("10.7.8.0/24")) // lists again: Listed must not be closed twice (a panic)
		eventually(t, "the lease still in the view after the re-list", func() bool {
			v.mu.Lock()
			defer v.mu.Unlock()
			_, ok := v.leases[peer.Subnet]
			return ok
		})
	})
}
