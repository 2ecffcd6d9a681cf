package etcdstore_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/lease/etcdtest"
)

// TestScaleAgents is the control plane under load: N simulated agents in
// this process (a lease.Manager and a lease.Watcher each, sharing a few etcd
// clients) start at once on one embedded etcd, each acquires a subnet and
// watches until it sees every other agent's lease. N is 100 by default and
// 1,000 with FELT_LONG=1 (or FELT_SCALE_AGENTS=n). It checks that subnets
// are unique and that every view converges to exactly the other N-1 leases,
// and reports how long acquisition and convergence took.
func TestScaleAgents(t *testing.T) {
	n := 100
	if os.Getenv("FELT_LONG") == "1" {
		n = 1000
	}
	if v := os.Getenv("FELT_SCALE_AGENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("FELT_SCALE_AGENTS %q: want a number of agents >= 2", v)
		}
	}
	const clients = 4
	s := etcdtest.Start(t, etcdtest.Embedded)
	// Not testCtx: its 60 s would cut a big run short.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := mustConfig(t, `{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"udp"}}`)
	var stores []*etcdstore.Store
	for range clients {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint()}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		stores = append(stores, etcdstore.New(cli, "", etcdstore.Options{RequestTimeout: time.Minute}))
	}

	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	views := make([]*scaleView, n)
	subnets := make([]netip.Prefix, n)
	start := time.Now()
	var acquiredAt atomic.Int64 // ns after start when the last agent acquired
	var acquired atomic.Int64
	var converged sync.WaitGroup
	converged.Add(n)
	errs := make(chan error, n)
	var running sync.WaitGroup
	for i := range n {
		views[i] = &scaleView{want: n - 1, peers: map[netip.Prefix]bool{}, done: converged.Done}
		running.Go(func() {
			st := stores[i%clients]
			m, err := lease.NewManager(st, lease.ManagerOptions{RaceRetries: 50})
			if err != nil {
				errs <- err
				return
			}
			l, err := m.Acquire(ctx, cfg, nodeAttrs(i), netip.Prefix{})
			if err != nil {
				errs <- fmt.Errorf("agent %d: %w", i, err)
				converged.Done()
				return
			}
			subnets[i] = l.Subnet
			acquired.Add(1)
			for {
				old := acquiredAt.Load()
				now := int64(time.Since(start))
				if now <= old || acquiredAt.CompareAndSwap(old, now) {
					break
				}
			}
			w := lease.NewWatcher(st, nil)
			w.WatchLeases(ctx, l.Subnet, views[i].emit)
		})
	}
	waited := make(chan struct{})
	go func() { converged.Wait(); close(waited) }()
	limit := 2 * time.Minute
	if n > 200 {
		limit = 10 * time.Minute
	}
	progress := func() string {
		short, least := 0, n
		for _, v := range views {
			if !v.isDone() {
				short++
			}
			least = min(least, v.size())
		}
		return fmt.Sprintf("%d of %d acquired, %d not converged, smallest view %d leases", acquired.Load(), n, short, least)
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
wait:
	for deadline := time.Now().Add(limit); ; {
		select {
		case <-waited:
			break wait
		case err := <-errs:
			t.Fatal(err)
		case <-tick.C:
			t.Logf("after %v: %s", time.Since(start).Round(time.Second), progress())
			if time.Now().After(deadline) {
				t.Fatalf("not converged after %v: %s", limit, progress())
			}
		}
	}
	took := time.Since(start)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	seen := map[netip.Prefix]int{}
	for i, sn := range subnets {
		if j, dup := seen[sn]; dup {
			t.Fatalf("agents %d and %d both hold %s", j, i, sn)
		}
		seen[sn] = i
	}
	for i, v := range views {
		v.mu.Lock()
		if len(v.peers) != n-1 || v.peers[subnets[i]] {
			t.Errorf("agent %d sees %d leases (own included: %v), want the other %d", i, len(v.peers), v.peers[subnets[i]], n-1)
		}
		v.mu.Unlock()
	}
	t.Logf("%d agents on %d etcd clients: all acquired within %v, all saw all %d others within %v; "+
		"process heap in use (embedded etcd included) grew by %.1f MiB (%.1f KiB per agent, views of %d leases each)",
		n, clients, time.Duration(acquiredAt.Load()).Round(time.Millisecond), n-1, took.Round(time.Millisecond),
		float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/(1<<20), float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/1024/float64(n), n-1)
	cancel()
	running.Wait()
}

// scaleView is one simulated agent's view of the others.
type scaleView struct {
	want  int
	done  func()
	mu    sync.Mutex
	peers map[netip.Prefix]bool
	fired bool
}

func (v *scaleView) emit(evs []lease.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == lease.Added {
			v.peers[ev.Lease.Subnet] = true
		} else {
			delete(v.peers, ev.Lease.Subnet)
		}
	}
	if !v.fired && len(v.peers) >= v.want {
		v.fired = true
		v.done()
	}
}

func (v *scaleView) size() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.peers)
}

func (v *scaleView) isDone() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fired
}
