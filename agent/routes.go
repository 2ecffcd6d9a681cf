package agent

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/kroute"
	"github.com/feltnet/felt/router"
)

// peerRoutes keeps a kernel route <subnet> via <PublicIP> (for a peer's
// IPv6 subnet <IPv6Subnet> via <PublicIPv6>) for the peers
// that are reached directly: every peer under host-gw (on the external
// link, added as flanneld's host-gw adds), or under vxlan DirectRouting the
// peers whose PublicIP is on-link (no link given, replaced as flanneld's
// vxlan replaces). setPeers runs on the watch goroutine, run on its own;
// the path queries from any goroutine.
type peerRoutes struct {
	link     int  // host-gw: the external interface; 0 under DirectRouting
	onLinkOK bool // DirectRouting: only on-link peers are direct
	every    time.Duration
	onLink   func(netip.Addr) (bool, error) // kroute.OnLink; unit tests replace it
	keeper   *kroute.Keeper
	log      *zap.Logger

	mu     sync.Mutex
	peers  map[netip.Prefix]netip.Addr // current peers: subnet → PublicIP
	direct map[netip.Prefix]bool       // peers given a kernel route
}

func newPeerRoutes(link int, directRouting bool, log *zap.Logger) *peerRoutes {
	r := &peerRoutes{link: link, onLinkOK: directRouting, every: kroute.CheckEvery, onLink: kroute.OnLink,
		keeper: &kroute.Keeper{Replace: directRouting}, log: log,
		peers: map[netip.Prefix]netip.Addr{}, direct: map[netip.Prefix]bool{}}
	r.keeper.OnRestore = func(rt kroute.Route) { log.Info("route restored", zap.Stringer("route", rt)) }
	return r
}

// setPeers makes the routes match peers: routes of peers that left are
// deleted, each peer is (re)classified and routed.
func (r *peerRoutes) setPeers(peers []router.Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[netip.Prefix]netip.Addr, len(peers))
	for _, p := range peers {
		// An IPv6 peer's Addr is its PublicIPv6 under host-gw and vxlan
		// (peer6Of): <IPv6Subnet> via <PublicIPv6>, as flanneld's v6 routes.
		if p.Subnet.Addr().Is4() != p.Addr.Addr().Is4() {
			continue // no gateway of the subnet's family: stays tunnelled
		}
		next[p.Subnet] = p.Addr.Addr()
	}
	for sn := range r.peers {
		if _, ok := next[sn]; !ok {
			r.unroute(sn, "peer removed")
		}
	}
	r.peers = next
	for sn, pub := range next {
		r.route(sn, pub)
	}
}

// route classifies one peer and programs its route (or removes it when the
// peer is tunnelled); r.mu is held.
func (r *peerRoutes) route(sn netip.Prefix, pub netip.Addr) {
	if r.onLinkOK {
		ok, err := r.onLink(pub)
		if err != nil {
			r.log.Warn("on-link test failed; tunnelling the peer", zap.Stringer("subnet", sn), zap.Error(err))
		}
		if !ok {
			if r.direct[sn] {
				r.unroute(sn, "PublicIP no longer on-link: tunnelled")
			}
			return
		}
	}
	want := kroute.Route{Dst: sn, Gw: pub, Link: r.link}
	if have, ok := r.keeper.Get(sn); ok && have == want && r.direct[sn] {
		return
	}
	err := r.keeper.Set(want)
	r.direct[sn] = true
	if err != nil {
		// Kept: the next check tries again, as flanneld's route list does.
		r.log.Error("route not installed; retrying every check", zap.Stringer("route", want), zap.Error(err))
		return
	}
	r.log.Info("direct route", zap.Stringer("route", want))
}

// unroute deletes the peer's route; r.mu is held.
func (r *peerRoutes) unroute(sn netip.Prefix, why string) {
	if !r.direct[sn] {
		return
	}
	delete(r.direct, sn)
	if err := r.keeper.Remove(sn); err != nil {
		r.log.Warn("route not deleted", zap.Stringer("subnet", sn), zap.Error(err))
		return
	}
	r.log.Info("direct route removed", zap.Stringer("subnet", sn), zap.String("why", why))
}

// check re-classifies every peer (DirectRouting: a PublicIP can move on or
// off the link without a lease change) and puts back missing routes.
func (r *peerRoutes) check() {
	if r.onLinkOK {
		r.mu.Lock()
		for sn, pub := range r.peers {
			r.route(sn, pub)
		}
		r.mu.Unlock()
	}
	if _, err := r.keeper.Check(); err != nil {
		r.log.Warn("route check", zap.Error(err))
	}
}

// run checks every r.every (flanneld: 10 s) until ctx ends.
func (r *peerRoutes) run(ctx context.Context) error {
	every(ctx, r.every, r.check)
	return nil
}

// path is how the peer at sn is reached.
func (r *peerRoutes) path(sn netip.Prefix) string {
	if r == nil {
		return pathTunnelled
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.direct[sn] {
		return pathDirect
	}
	return pathTunnelled
}
