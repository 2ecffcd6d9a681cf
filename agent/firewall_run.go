package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/lease"
)

// startFirewall installs flanneld's rules for --ip-masq and
// --iptables-forward-rules for each family the network carries (its IPv4
// and IPv6 Networks: iptables and ip6tables, or the nftables tables ip and
// ip6), in the mode the network config picks, and keeps them every
// --iptables-resync. A family's rule set with the masquerade in it that
// cannot be set up at start is fatal (flanneld: in nftables mode; in
// iptables mode it logs and retries); forward rules alone that cannot are a
// warning, since the FORWARD policy may well be ACCEPT, and are tried again
// every resync. With both flags off it removes what a previous run left in
// either mode, as flanneld cleans up unconditionally.
func (n *node) startFirewall(g *group) error {
	fw := newFirewall(n.netCfg.EnableNFTables)
	if !n.cfg.IPMasq && !n.cfg.ForwardRules {
		if err := errors.Join(fw.removeOther(), fw.remove()); err != nil {
			n.log.Warn("could not remove a previous run's firewall rules", zap.Error(err))
		}
		return nil
	}
	var err error
	if n.netCfg.EnableIPv4 {
		n.fw, err = n.keepFirewall(g, fw, n.netCfg.Network, n.own.Subnet)
	}
	if err == nil && n.netCfg.EnableIPv6 {
		n.fw6, err = n.keepFirewall(g, fw, n.netCfg.IPv6Network, n.own.IPv6Subnet)
	}
	return err
}

// keepFirewall installs one family's rules and starts their resync.
func (n *node) keepFirewall(g *group, fw firewall, network, subnet netip.Prefix) (*fwKeeper, error) {
	log := n.log.Named("firewall").With(zap.Stringer("network", network))
	k := &fwKeeper{fw: fw, log: log}
	rs := ruleSet{network: network, subnet: subnet, masq: n.cfg.IPMasq, forward: n.cfg.ForwardRules,
		randomFully: !n.cfg.NoRandomFully}
	if err := k.start(rs); err != nil {
		if n.cfg.IPMasq {
			what := "--ip-masq rules"
			if n.cfg.ForwardRules {
				what = "--ip-masq and forward rules" // one transaction: either may have failed
			}
			return nil, fmt.Errorf("set up the %s (%s, network %s): %w", what, fw.mode(), network, err)
		}
		log.Warn("forward rules not set, tried again every --iptables-resync: forwarded overlay traffic is dropped "+
			"if the FORWARD policy is DROP (pass --iptables-forward-rules=false to skip them)",
			zap.String("mode", fw.mode()), zap.Error(err))
	} else {
		log.Info("firewall rules in place", zap.String("mode", fw.mode()), zap.Bool("ip_masq", rs.masq),
			zap.Bool("forward", rs.forward), zap.Duration("resync", n.cfg.Resync))
	}
	g.spawn("firewall", func(ctx context.Context) error { k.run(ctx, n.cfg.Resync); return nil })
	return k, nil
}

// startBlackhole is flanneld's --ip-blackhole-route: a blackhole route for
// the own subnet of each family the network carries, so that traffic to an
// address no container holds is dropped here instead of following the
// default route (flanneld adds it on the first resync tick; felt adds it at
// once, then checks it every --iptables-resync). It follows the lease: a
// re-acquired subnet's blackhole replaces the old one (reacquired), and at
// start the blackhole a previous run left for its subnet (subnet.env's)
// goes if that differs.
func (n *node) startBlackhole(g *group) {
	if !n.cfg.BlackholeRoute {
		return
	}
	if n.netCfg.EnableIPv4 {
		n.bh = n.keepBlackhole(g, n.prev.Subnet, func(l lease.Lease) netip.Prefix { return l.Subnet })
	}
	if n.netCfg.EnableIPv6 {
		n.bh6 = n.keepBlackhole(g, n.prev.IPv6Subnet, func(l lease.Lease) netip.Prefix { return l.IPv6Subnet })
	}
}

// keepBlackhole adds the blackhole of the subnet of's family and checks it
// every --iptables-resync.
func (n *node) keepBlackhole(g *group, prev netip.Prefix, of func(lease.Lease) netip.Prefix) *blackhole {
	bh := &blackhole{log: n.log, installed: prev}
	bh.ensure(of(n.st.current()))
	g.spawn("blackhole", func(ctx context.Context) error {
		every(ctx, n.cfg.Resync, func() { bh.ensure(of(n.st.current())) })
		return nil
	})
	return bh
}

// blackhole keeps the blackhole route of the own subnet of one family;
// ensure runs on the resync and the lease keeper's goroutines, mu orders
// them.
type blackhole struct {
	log *zap.Logger

	mu        sync.Mutex
	installed netip.Prefix // the subnet whose blackhole felt added (or a previous run did)
}

// ensure makes subnet's blackhole route exist and removes the one of the
// subnet installed before, if that differs: the old subnet may be another
// node's now, and a blackhole for it is more specific than the Network's
// route through the TUN.
func (b *blackhole) ensure(subnet netip.Prefix) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.installed; old.IsValid() && old != subnet {
		if err := delBlackhole(old); err != nil {
			b.log.Error("remove the blackhole route of the previous subnet", zap.Stringer("subnet", old), zap.Error(err))
			return // tried again on the next resync
		}
		b.log.Info("removed the blackhole route of the previous subnet", zap.Stringer("subnet", old))
	}
	b.installed = subnet
	if err := addBlackhole(subnet); err != nil {
		b.log.Error("blackhole route for the own subnet", zap.Stringer("subnet", subnet), zap.Error(err))
	}
}

// blackholes is the blackhole route for subnet and the routes of type
// blackhole to that destination the kernel has now, in subnet's family.
func blackholes(subnet netip.Prefix) (*netlink.Route, []netlink.Route, error) {
	_, dst, err := net.ParseCIDR(subnet.String())
	if err != nil {
		return nil, nil, err
	}
	family := netlink.FAMILY_V4
	if subnet.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	r := &netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE, Family: family}
	have, err := netlink.RouteListFiltered(family, r, netlink.RT_FILTER_DST|netlink.RT_FILTER_TYPE)
	if err != nil {
		return nil, nil, fmt.Errorf("list blackhole routes: %w", err)
	}
	return r, have, nil
}

// addBlackhole adds a blackhole route for subnet unless one exists (as
// flanneld: RouteAdd, so a route of another type is never replaced).
func addBlackhole(subnet netip.Prefix) error {
	r, have, err := blackholes(subnet)
	if err != nil || len(have) > 0 {
		return err
	}
	if err := netlink.RouteAdd(r); err != nil {
		return fmt.Errorf("add blackhole route %s: %w", r.Dst, err)
	}
	return nil
}

// delBlackhole deletes the blackhole routes for subnet (type blackhole and
// that destination only: a route of another type for it stays); none is
// fine.
func delBlackhole(subnet netip.Prefix) error {
	r, have, err := blackholes(subnet)
	if err != nil {
		return err
	}
	for i := range have {
		if err := netlink.RouteDel(&have[i]); err != nil {
			return fmt.Errorf("delete blackhole route %s: %w", r.Dst, err)
		}
	}
	return nil
}

// every runs fn every period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
