package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/lease/etcdstore"
)

// Start-up as a boot-time service sees it: /healthz answers from the first
// second, etcd may come up after felt (retried with backoff, as flanneld
// retries), and readiness (/readyz, sd_notify READY=1) comes only once the
// lease, the TUN, subnet.env and the firewall rules are in place.

// connectBackoff is the schedule of etcd connection attempts at start-up:
// from 1 s (flanneld's retry interval) doubling to 5 s.
var connectBackoff = struct{ first, max time.Duration }{time.Second, 5 * time.Second}

// waitingFor says what start-up waits for: on /readyz and to systemd.
func (n *node) waitingFor(what string) {
	if n.health != nil {
		n.health.setWaiting(what)
	}
	n.notify.status(what)
}

// startHealthEarly listens for /healthz before anything else is done.
func (n *node) startHealthEarly() error {
	if n.cfg.HealthzPort <= 0 {
		return nil
	}
	h, err := newHealthServer(net.JoinHostPort(n.cfg.HealthzIP, strconv.Itoa(n.cfg.HealthzPort)))
	if err != nil {
		return err
	}
	n.closers = append(n.closers, h.close)
	n.health = h
	go h.serve(n.log)
	return nil
}

// attachHealth serves /metrics and /status once the forwarding exists; eng
// is felt's engine (through its engSlot, so counters follow a rebuilt TUN),
// nil for the backends without one: wireguard (wireguard-go's packet path),
// host-gw, alloc and extension.
func (n *node) attachHealth(eng engineView) {
	if n.health == nil {
		return
	}
	status := func() any {
		s := n.st.status()
		if eng != nil {
			s.Counters = counters(eng.Counters())
		}
		if n.plane.wg != nil {
			wgStatus(n.plane.wg, &s)
		}
		if s.Counters == nil {
			s.Counters = map[string]uint64{}
		}
		return s
	}
	var tunDrops func() [drop.NumReasons]uint64
	if n.plane.wg != nil {
		tunDrops = n.plane.wg.Dropped
	}
	reg := newMetrics(n.st, eng, tunDrops, n.peers.counts)
	if n.plane.wg != nil {
		reg.MustRegister(newWGCollector(n.plane.wg, n.log))
	}
	n.health.attach(reg, status)
}

// connectRetry opens the etcd client, retrying while no etcd is reachable
// (a boot where felt starts before etcd); any other error (bad TLS files,
// rejected credentials) is returned at once.
func (n *node) connectRetry(ctx context.Context) (*etcdstore.Store, error) {
	n.waitingFor("connecting to etcd at " + strings.Join(n.cfg.Etcd.Endpoints, ","))
	wait := connectBackoff.first
	for attempt := 1; ; attempt++ {
		store, err := n.connect(ctx)
		if err == nil {
			if attempt > 1 {
				n.log.Info("etcd reachable", zap.Int("attempts", attempt))
			}
			return store, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !unreachable(err) {
			return nil, err
		}
		n.log.Warn("etcd not reachable yet; retrying", zap.Duration("in", wait), zap.Int("attempt", attempt), zap.Error(err))
		n.waitingFor(fmt.Sprintf("waiting for etcd (attempt %d): %v", attempt, err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, connectBackoff.max)
	}
}

// connect opens the etcd client and the lease store on it. The first
// request (NewClient's probe) waits no longer than the dial timeout, so
// that attempts come every few seconds while etcd is away.
func (n *node) connect(ctx context.Context) (*etcdstore.Store, error) {
	o := n.cfg.Etcd
	if o.DialTimeout > 0 && o.RequestTimeout > 0 {
		o.RequestTimeout = min(o.RequestTimeout, o.DialTimeout)
	}
	cli, err := etcdstore.NewClient(ctx, o)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { cli.Close() })
	return etcdstore.New(cli, n.cfg.Etcd.Prefix, etcdstore.Options{Logger: n.log.Named("etcd"),
		RequestTimeout: n.cfg.Etcd.RequestTimeout}), nil
}

// unreachable tells a connection failure (retry) from a configuration error.
func unreachable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "no etcd reachable") ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "Unavailable")
}

// readyWhenListed waits, for host-gw, until the first listing of the leases
// has been applied, so that the routes to the peers known at start are in
// (without them the host's packets to the overlay would follow the default
// route). The other kinds are ready as run starts: udp, vxlan and wireguard
// once the TUN is configured (adopt, before run), alloc and extension once
// the lease and subnet.env are. It reports false if ctx ended first.
func (n *node) readyWhenListed(ctx context.Context) bool {
	if n.plane.kind == routeBackend {
		n.waitingFor("listing the other leases to route to their subnets")
		select {
		case <-n.watcher.Listed():
		case <-ctx.Done():
		}
	}
	return ctx.Err() == nil
}

// readiness is whether /readyz says 200: once markReady ran, while no
// rebuild or re-acquisition is under way (pause), until the node stops.
type readiness struct {
	mu       sync.Mutex
	ready    bool // markReady ran
	paused   int  // pauses not yet resumed
	stopping bool
	msg      string // the ready STATUS= line
}

// markReady reports readiness: /readyz turns 200 and systemd gets READY=1.
func (n *node) markReady() {
	on := n.cfg.TUNName
	if !n.plane.hasTUN() {
		on = "no TUN"
	}
	msg := fmt.Sprintf("ready: subnet %s on %s, %s backend", n.st.current().Key(), on, n.netCfg.Backend.Type)
	r := &n.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return
	}
	r.ready, r.msg = true, msg
	if r.paused == 0 && n.health != nil {
		n.health.ready.Store(true)
	}
	n.notify.ready(msg)
	n.log.Info("felt is ready", zap.Stringer("subnet", n.st.current().Key()))
}

// pause withdraws readiness (/readyz 503 saying why, systemd STATUS=)
// until the returned resume is called, which restores it if the node was
// ready and is not stopping. Pauses nest.
func (n *node) pause(why string) (resume func()) {
	r := &n.ready
	r.mu.Lock()
	r.paused++
	n.unreadyLocked(why)
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.paused--
			if r.paused > 0 || !r.ready || r.stopping {
				return
			}
			if n.health != nil {
				n.health.ready.Store(true)
			}
			n.notify.status(r.msg)
		})
	}
}

// stopping withdraws readiness for good and tells systemd STOPPING=1, as
// soon as the node's context is done (its loops may take a while to end).
func (n *node) stopping() {
	r := &n.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return
	}
	r.stopping = true
	n.unreadyLocked("stopping")
	n.notify.stopping()
}

func (n *node) unreadyLocked(why string) {
	if n.health != nil {
		n.health.ready.Store(false)
		n.health.setWaiting(why)
	}
	n.notify.status(why)
}
