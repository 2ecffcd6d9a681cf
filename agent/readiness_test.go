package agent

import (
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
)

// readyzKeeper re-acquires a lease once the test says so.
type readyzKeeper struct {
	keeper
	next    lease.Lease
	reacq   chan struct{} // the test closes it: re-acquire now
	applied chan struct{} // closed after onChange returned
}

func (k *readyzKeeper) Keep(ctx context.Context, _ *lease.Config, _ lease.Lease, _ lease.Attrs, onChange func(lease.Lease)) error {
	select {
	case <-k.reacq:
		onChange(k.next)
		close(k.applied)
	case <-ctx.Done():
	}
	<-ctx.Done()
	return nil
}

// readyzEngine asks /readyz while the node applies a new own subnet and
// while its loops end after the node was told to stop.
type readyzEngine struct {
	forwarder
	n                  *node
	t                  *testing.T
	duringLease, atEnd int
}

func (e *readyzEngine) Run(ctx context.Context) error {
	<-ctx.Done()
	e.atEnd, _ = get(e.t, e.n, "/readyz")
	return nil
}

func (e *readyzEngine) SetLocal(netip.Prefix) { e.duringLease, _ = get(e.t, e.n, "/readyz") }

// TestReadyzWithdrawn: /readyz is 200 once the node runs, 503 while a
// re-acquired lease is being applied and 200 after, and 503 from the moment
// the node is told to stop while its loops still end.
func TestReadyzWithdrawn(t *testing.T) {
	n, _ := rebuildNode(t)
	n.plane = &plane{backend: lease.BackendAlloc, kind: leaseOnly, mtu: 1500}
	n.st = newState(n.netCfg, n.plane, netip.MustParseAddr("127.0.0.1"), "", n.log)
	n.st.own = n.own
	n.cfg.SubnetFile = filepath.Join(t.TempDir(), "subnet.env")
	n.peers = newPeerSet(n.netCfg, n.own, zap.NewNop())
	n.watcher = listedWatcher{listed: make(chan struct{})}
	k := &readyzKeeper{next: lease.Lease{Subnet: netip.MustParsePrefix("10.5.2.0/24")}, reacq: make(chan struct{}),
		applied: make(chan struct{})}
	e := &readyzEngine{n: n, t: t}
	n.keeper, n.eng = k, e
	n.attachHealth(nil)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	inNewNetns(t, func() { // what run does to the firewall stays in a throwaway namespace
		go func() {
			for {
				if code, _ := get(t, n, "/readyz"); code == http.StatusOK {
					close(k.reacq)
					<-k.applied
					if code, body := get(t, n, "/readyz"); code != http.StatusOK {
						t.Errorf("/readyz after the re-acquired lease was applied: %d %s", code, body)
					}
					cancel()
					return
				}
			}
		}()
		ran <- n.run(ctx)
	})
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
	if e.duringLease != http.StatusServiceUnavailable {
		t.Errorf("/readyz while a re-acquired lease is applied: %d, want 503", e.duringLease)
	}
	if e.atEnd != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the loops end after the stop: %d, want 503", e.atEnd)
	}
}
