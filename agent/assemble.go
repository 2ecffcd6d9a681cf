package agent

import (
	"context"
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

// Small interfaces over what a running node uses; lease and router provide
// them (lease.Manager, lease.Watcher, router.Engine).
type (
	// keeper holds the own lease and re-publishes its value.
	keeper interface {
		Keep(ctx context.Context, cfg *lease.Config, l lease.Lease, attrs lease.Attrs, onChange func(lease.Lease)) error
		Republish(attrs lease.Attrs)
	}
	// leaseWatcher reports the other nodes' leases; Listed is closed once
	// the first listing was emitted.
	leaseWatcher interface {
		WatchLeases(ctx context.Context, own netip.Prefix, emit func([]lease.Event)) error
		SetOwn(own netip.Prefix)
		Listed() <-chan struct{}
	}
	// forwarder is the packet path.
	forwarder interface {
		Run(ctx context.Context) error
		SetPeers(peers []router.Peer)
		SetLocal(local netip.Prefix)
		SetLocal6(local netip.Prefix) // the own IPv6 subnet, with EnableIPv6
		SetFramer(f router.Framer) error
	}
)

// node is one assembled agent: what run needs, built by assemble.
type node struct {
	cfg     Config
	log     *zap.Logger
	netCfg  *lease.Config
	plane   *plane
	own     lease.Lease // as acquired; st holds the current one
	st      *state
	peers   *peerSet
	keeper  keeper
	watcher leaseWatcher
	eng     forwarder     // the backend's forwarding (backend.go: paths)
	routes  *peerRoutes   // kernel routes to direct peers; nil without host-gw or DirectRouting
	health  *healthServer // nil without --healthz-port
	closers []func()      // run by close in reverse

	// drop-in lifecycle (boot.go, firewall_run.go, tunkeep.go)
	notify notifier
	ready  readiness  // what /readyz and systemd are told (boot.go)
	fw     *fwKeeper  // IPv4; set by run with --ip-masq or forward rules, before the keeper starts
	fw6    *fwKeeper  // IPv6; the same
	bh     *blackhole // IPv4; set by run with --ip-blackhole-route, before the keeper starts
	bh6    *blackhole // IPv6; the same

	prev lease.Lease // subnet.env's subnets at start: a previous run's, if any
}

// assemble builds a node in order: config, external interface, the
// backend's plane (socket and TUN for the packet backends, before any lease,
// as flanneld creates its device first), lease, peer set, forwarding and
// health server. On error it closes what it built.
func assemble(ctx context.Context, cfg Config, log *zap.Logger) (*node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &node{cfg: cfg, log: log, notify: notifier{log: log}}
	if err := n.build(ctx); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *node) build(ctx context.Context) error {
	if err := n.startHealthEarly(); err != nil {
		return err
	}
	store, err := n.connectRetry(ctx)
	if err != nil {
		return err
	}
	n.waitingFor("waiting for the network config at " + n.cfg.Etcd.Prefix + "/config")
	if n.netCfg, err = loadNetConfig(ctx, store, n.cfg.Etcd.Prefix, n.log); err != nil {
		return err
	}
	var ext extIface
	if n.netCfg.EnableIPv4 {
		ext, err = findExtIface(choiceOf(n.cfg))
	} else {
		ext, err = findExtIface6(choiceOf(n.cfg), n.cfg.PublicIPv6) // ipv6.go
	}
	if err != nil {
		return err
	}
	public := n.cfg.PublicIP
	if !public.IsValid() {
		public = ext.Addr
	}
	if !n.netCfg.EnableIPv4 {
		public = netip.IPv4Unspecified() // flanneld's PublicIP of an IPv6-only node
	}
	if n.cfg.PublicIPv6, err = resolvePublic6(n.netCfg, ext, n.cfg.PublicIPv6); err != nil {
		return err
	}
	if n.plane, err = newPlane(n.netCfg, ext, public, n.cfg, n.log); err != nil {
		return err
	}
	n.closers = append(n.closers, n.plane.close)
	n.st = newState(n.netCfg, n.plane, public, n.cfg.TUNName, n.log)
	n.waitingFor("acquiring a subnet lease")
	if err := n.takeLease(ctx, store); err != nil {
		return err
	}
	n.peers = newPeerSet(n.netCfg, n.own, n.log.Named("peers"))
	n.watcher = lease.NewWatcher(store, n.log.Named("watch"))
	view, err := n.newForwarder()
	if err != nil {
		return err
	}
	n.attachHealth(view)
	return nil
}

// loadNetConfig waits for the network config and narrows it to what felt
// publishes.
func loadNetConfig(ctx context.Context, src configSource, prefix string, log *zap.Logger) (*lease.Config, error) {
	c, err := waitConfig(ctx, src, prefix, log)
	if err != nil {
		return nil, err
	}
	for _, u := range unsupported(c) {
		log.Warn("network config setting not supported by felt", zap.String("setting", u))
	}
	if !c.EnableIPv4 && !ipv6OnlyBackend(c.Backend.Type) {
		return nil, fmt.Errorf("config: EnableIPv4 false: felt carries an IPv6-only cluster with the udp and vxlan backends only, not %q", c.Backend.Type)
	}
	if c.EnableIPv6 && !ipv6Backend(c.Backend.Type) {
		// As the warning says: an IPv4-only key, so that no dual-stack key
		// promises an IPv6 subnet whose data felt never publishes.
		v4 := *c
		v4.EnableIPv6 = false
		c = &v4
	}
	return c, nil
}

// takeLease acquires the own lease (the subnet.env subnet if still free)
// and configures the TUN for it (subnet.env follows the firewall rules, in
// run, as in flanneld).
func (n *node) takeLease(ctx context.Context, store lease.Store) error {
	mgr, err := lease.NewManager(store, lease.ManagerOptions{Logger: n.log.Named("lease"),
		RenewMargin: n.cfg.RenewMargin, OnRenew: n.st.renewed})
	if err != nil {
		return err
	}
	n.keeper = mgr
	prev := lease.Lease{}
	if env, err := lease.ReadSubnetEnv(n.cfg.SubnetFile); err == nil {
		prev = lease.Lease{Subnet: env.Subnet, IPv6Subnet: env.IPv6Subnet}
		n.prev = prev
	}
	if n.own, err = mgr.AcquirePrev(ctx, n.netCfg, n.plane.attrs, prev); err != nil {
		return fmt.Errorf("acquire a subnet lease: %w", err)
	}
	if err := n.plane.afterLease(n.netCfg, n.own); err != nil {
		return err
	}
	n.log.Info("subnet lease acquired", zap.Stringer("subnet", n.own.Subnet), zap.Stringer("ipv6_subnet", n.own.IPv6Subnet),
		zap.Stringer("public_ip", n.st.public),
		zap.String("backend", n.netCfg.Backend.Type), zap.Time("expires", n.own.Expiration))
	return n.st.adopt(n.own)
}

// newEngine builds felt's packet engine on the plane's TUN and socket for
// the own lease l (both families). The caller closes it: the engSlot holds
// one engine at a time and closes a replaced one.
func (n *node) newEngine(l lease.Lease) (*router.Engine, error) {
	eng, err := router.New(router.Config{
		Device:    n.plane.dev,
		Conn:      n.plane.conn,
		Queues:    n.plane.more,
		Framer:    n.plane.framer,
		Network:   own4(l, n.netCfg.Network), // zero on an IPv6-only node
		SubnetLen: n.netCfg.SubnetLen,
		Local:     l.Subnet,

		IPv6Network:   own6(l, n.netCfg.IPv6Network),
		IPv6SubnetLen: n.netCfg.IPv6SubnetLen,
		Local6:        l.IPv6Subnet,

		Linger: n.plane.linger,
	}, n.log.Named("router"))
	if err != nil {
		return nil, err
	}
	return eng, nil
}

// close releases what assemble built, last first.
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}
