package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
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
	// leaseWatcher reports the other nodes' leases.
	leaseWatcher interface {
		WatchLeases(ctx context.Context, own netip.Prefix, emit func([]lease.Event)) error
		SetOwn(own netip.Prefix)
	}
	// forwarder is the packet path.
	forwarder interface {
		Run(ctx context.Context) error
		SetPeers(peers []router.Peer)
		SetLocal(local netip.Prefix)
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
	eng     forwarder
	health  *healthServer // nil without --healthz-port
	masq    *ipMasq       // set by run with --ip-masq, before the keeper starts
	fw6     *firewall6    // set by run with EnableIPv6 (ipv6.go)
	closers []func()      // run by close in reverse
}

// assemble builds a node in order: config, external interface, socket and
// TUN (before any lease, as flanneld creates its device first), lease,
// engine, peer set and health server. On error it closes what it built.
func assemble(ctx context.Context, cfg Config, log *zap.Logger) (*node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &node{cfg: cfg, log: log}
	if err := n.build(ctx); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *node) build(ctx context.Context) error {
	store, err := n.connect(ctx)
	if err != nil {
		return err
	}
	if n.netCfg, err = loadNetConfig(ctx, store, n.cfg.Etcd.Prefix, n.log); err != nil {
		return err
	}
	ext, err := findExtIface(n.cfg.Ifaces)
	if err != nil {
		return err
	}
	public := n.cfg.PublicIP
	if !public.IsValid() {
		public = ext.Addr
	}
	if n.cfg.PublicIPv6, err = resolvePublic6(n.netCfg, ext, n.cfg.PublicIPv6); err != nil {
		return err
	}
	if n.plane, err = newPlane(n.netCfg, ext, public, n.cfg, n.log); err != nil {
		return err
	}
	n.closers = append(n.closers, n.plane.close)
	n.st = newState(n.netCfg, n.plane, public, n.cfg.TUNName, n.log)
	if err := n.takeLease(ctx, store); err != nil {
		return err
	}
	eng, err := n.newEngine()
	if err != nil {
		return err
	}
	n.peers = newPeerSet(n.netCfg, n.own, n.log.Named("peers"))
	n.watcher = lease.NewWatcher(store, n.log.Named("watch"))
	return n.startHealth(eng)
}

// connect opens the etcd client and the lease store on it.
func (n *node) connect(ctx context.Context) (*etcdstore.Store, error) {
	cli, err := etcdstore.NewClient(ctx, n.cfg.Etcd)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { cli.Close() })
	return etcdstore.New(cli, n.cfg.Etcd.Prefix, etcdstore.Options{Logger: n.log.Named("etcd"),
		RequestTimeout: n.cfg.Etcd.RequestTimeout}), nil
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
	return c, nil
}

// takeLease acquires the own lease (the subnet.env subnet if still free)
// and applies it: TUN address and subnet.env.
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
	}
	if n.own, err = mgr.AcquirePrev(ctx, n.netCfg, n.plane.attrs, prev); err != nil {
		return fmt.Errorf("acquire a subnet lease: %w", err)
	}
	n.log.Info("subnet lease acquired", zap.Stringer("subnet", n.own.Subnet), zap.Stringer("ipv6_subnet", n.own.IPv6Subnet),
		zap.Stringer("public_ip", n.st.public),
		zap.String("backend", n.netCfg.Backend.Type), zap.Time("expires", n.own.Expiration))
	return n.st.adopt(n.own, n.cfg)
}

func (n *node) newEngine() (*router.Engine, error) {
	eng, err := router.New(router.Config{
		Device:    n.plane.dev,
		Conn:      n.plane.conn,
		Framer:    n.plane.framer,
		Network:   n.netCfg.Network,
		SubnetLen: n.netCfg.SubnetLen,
		Local:     n.own.Subnet,

		IPv6Network:   n.own6(n.netCfg.IPv6Network),
		IPv6SubnetLen: n.netCfg.IPv6SubnetLen,
		Local6:        n.own.IPv6Subnet,
	}, n.log.Named("router"))
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, func() { eng.Close() })
	n.eng = eng
	return eng, nil
}

// startHealth listens for /healthz, /readyz, /metrics and /status (ready at
// once: the lease is taken and subnet.env written); run serves it.
func (n *node) startHealth(eng *router.Engine) error {
	if n.cfg.HealthzPort <= 0 {
		return nil
	}
	status := func() any {
		s := n.st.status()
		s.Counters = counters(eng.Stats().Snapshot())
		return s
	}
	reg := newMetrics(n.st, eng, n.peers.counts)
	h, err := newHealthServer(net.JoinHostPort(n.cfg.HealthzIP, strconv.Itoa(n.cfg.HealthzPort)), reg, status)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, h.close)
	h.ready.Store(true)
	n.health = h
	return nil
}

// close releases what assemble built, last first.
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}
