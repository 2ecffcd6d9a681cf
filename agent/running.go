package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

// run starts the node's loops and blocks until ctx ends or one of them
// fails; it returns that failure, or nil after ctx ended.
func (n *node) run(ctx context.Context) error {
	// SIGTERM or a failure: not ready from then on, before the loops end.
	g := newStoppingGroup(ctx, n.stopping)
	g.spawn("router", n.eng.Run)
	if n.plane.watches() {
		g.spawn("watch", func(ctx context.Context) error { return n.watcher.WatchLeases(ctx, n.own.Key(), n.onLeases) })
	}
	if n.routes != nil {
		g.spawn("routes", n.routes.run)
	}
	if err := n.startFirewall(g); err != nil {
		g.fail(err)
		return g.wait() // as flanneld: no subnet.env without the masquerade
	}
	n.startBlackhole(g)
	if err := n.st.writeEnv(n.own, n.cfg); err != nil {
		g.fail(err)
		return g.wait()
	}
	g.spawn("lease", func(ctx context.Context) error {
		return n.keeper.Keep(ctx, n.netCfg, n.own, n.plane.attrs, func(l lease.Lease) {
			if err := n.reacquired(l); err != nil {
				g.fail(err)
			}
		})
	})
	n.log.Info("felt agent running", n.plane.runFields(n.cfg.TUNName)...)
	if n.readyWhenListed(g.ctx) {
		n.markReady()
	}
	return g.wait()
}

// onLeases applies lease events, on the watch goroutine.
func (n *node) onLeases(evs []lease.Event) {
	if n.peers.apply(evs) {
		list := n.peers.list()
		n.eng.SetPeers(list)
		n.st.setPeers(list)
		n.checkVtepMAC(list)
	}
	if e := n.plane.ext; e != nil {
		e.apply(evs, n.peers.accepts)
	}
	n.st.setRejected(n.peers.rejectedList())
}

// checkVtepMAC moves off our VtepMACs that a peer publishes too: both
// families in one call (a flanneld peer that shares both never changes, so
// no later event would bring the second).
func (n *node) checkVtepMAC(peers []router.Peer) {
	v := n.plane.vtep
	if v == nil {
		return
	}
	var attrs lease.Attrs
	resolved := false
	for range 2 { // each resolve clears one family's collision
		p, ok := v.collision(peers)
		if !ok {
			break
		}
		a, err := v.resolve(p, n.log)
		if err != nil {
			n.log.Error("VtepMAC collision not resolved", zap.Error(err))
			return
		}
		attrs, resolved = a, true
	}
	if !resolved {
		return
	}
	if err := n.eng.SetFramer(v.framing()); err != nil {
		// Not reachable: a vxlan framing always fits the headroom.
		n.log.Error("VtepMAC collision not resolved: the engine refused the new framing", zap.Error(err))
		return
	}
	n.keeper.Republish(attrs)
}

// reacquired applies a lease the keeper took after losing the previous one,
// on the keeper's goroutine. An error means it is half-applied (the TUN or
// subnet.env still names the old subnet): the agent must stop, so that a
// restart applies it whole rather than forwarding into a black hole.
func (n *node) reacquired(l lease.Lease) error {
	n.log.Warn("subnet lease changed", zap.Stringer("subnet", l.Subnet), zap.Stringer("ipv6_subnet", l.IPv6Subnet), zap.Time("expires", l.Expiration))
	defer n.pause("applying the re-acquired lease " + l.Key().String())()
	n.peers.setOwn(l)
	n.watcher.SetOwn(l.Key())
	if l.Subnet.IsValid() {
		n.eng.SetLocal(l.Subnet)
	}
	n.reacquired6(l)
	if err := n.st.adopt(l); err != nil {
		return fmt.Errorf("apply the re-acquired lease %s: %w", l.Key(), err)
	}
	if n.fw != nil {
		if err := n.fw.setSubnet(l.Subnet); err != nil {
			n.log.Error("move the firewall rules to the new subnet", zap.Error(err))
		}
	}
	if n.bh != nil {
		n.bh.ensure(l.Subnet)
	}
	if n.bh6 != nil && l.IPv6Subnet.IsValid() {
		n.bh6.ensure(l.IPv6Subnet)
	}
	if err := n.st.writeEnv(l, n.cfg); err != nil {
		return fmt.Errorf("apply the re-acquired lease %s: %w", l.Key(), err)
	}
	return nil
}

// group runs named goroutines; the first error cancels the others' context.
type group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	stop   func()      // run once, before the goroutines see the end (nil: none)
	once   sync.Once   // for stop
	parent func() bool // stops the watch on the parent context
}

// newGroup makes a group that ends when ctx does or a goroutine fails.
// The group's context is not ctx's child: it ends only after stop (say,
// withdrawing readiness) has run, so that nothing the goroutines do on the
// way out is seen as ready.
func newGroup(ctx context.Context) *group { return newStoppingGroup(ctx, nil) }

func newStoppingGroup(ctx context.Context, stop func()) *group {
	g := &group{stop: stop}
	g.ctx, g.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	g.parent = context.AfterFunc(ctx, func() { g.end(context.Cause(ctx)) })
	return g
}

// end runs stop, then cancels the group with cause (the first cause wins).
func (g *group) end(cause error) {
	g.once.Do(func() {
		if g.stop != nil {
			g.stop()
		}
	})
	g.cancel(cause)
}

// spawn runs fn on its own goroutine with the group's context; an error it
// returns before the group is cancelled ends the group.
func (g *group) spawn(name string, fn func(context.Context) error) {
	g.wg.Go(func() {
		if err := fn(g.ctx); err != nil && g.ctx.Err() == nil {
			g.end(fmt.Errorf("%s: %w", name, err))
		}
	})
}

// fail ends the group with err (the first cause wins).
func (g *group) fail(err error) { g.end(err) }

// wait blocks until the group is cancelled (by its parent context or a
// failure) and every goroutine has returned; it returns the failure, nil
// for a plain cancellation.
func (g *group) wait() error {
	<-g.ctx.Done()
	g.wg.Wait()
	g.parent()
	err := context.Cause(g.ctx)
	g.cancel(nil)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
