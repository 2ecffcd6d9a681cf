// Package agent is felt's library entry point: Run wires the control plane
// (lease) to the packet path (tun, encap, router) for one host, as flanneld
// does for its udp and vxlan backends.
//
// Concurrency: Run starts one goroutine each for the router's two packet
// loops (inside router.Engine), the lease watcher, the lease keeper (renewal
// and re-acquisition), the health server and, with --ip-masq, the iptables
// resync. The first fatal error cancels the rest; Run returns when all ended.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

// Run runs the agent until ctx ends (SIGTERM in felt agent) or a fatal error.
// The lease is kept in etcd on exit, so a restart gets the same subnet.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	err := run(ctx, cfg, log)
	if err != nil && ctx.Err() != nil {
		// SIGTERM during start-up: whatever failed failed because of it.
		log.Info("felt agent stopped during start-up", zap.NamedError("cause", err))
		return nil
	}
	return err
}

func run(ctx context.Context, cfg Config, log *zap.Logger) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	cli, err := lease.NewClient(ctx, cfg.Etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	store := lease.NewEtcdStore(cli, cfg.Etcd.Prefix, lease.StoreOptions{Logger: log.Named("etcd"), RequestTimeout: cfg.Etcd.RequestTimeout})

	netCfg, err := waitConfig(ctx, store, cfg.Etcd.Prefix, log)
	if err != nil {
		return err
	}
	for _, u := range unsupported(netCfg) {
		log.Warn("network config setting not supported by felt", zap.String("setting", u))
	}
	if netCfg.EnableIPv6 {
		// As the warning says: an IPv4-only key, so that no dual-stack
		// key promises an IPv6 subnet whose data felt never publishes.
		c := *netCfg
		c.EnableIPv6 = false
		netCfg = &c
	}
	ext, err := findExtIface(cfg.Ifaces)
	if err != nil {
		return err
	}
	public := cfg.PublicIP
	if !public.IsValid() {
		public = ext.Addr
	}
	plane, err := newPlane(netCfg, ext, public, cfg, log)
	if err != nil {
		return err
	}
	defer plane.close()

	prev := netip.Prefix{}
	if env, err := lease.ReadSubnetEnv(cfg.SubnetFile); err == nil {
		prev = env.Subnet
	}
	var st *state // set below, before Keep starts renewing
	mgr, err := lease.NewManager(store, lease.ManagerOptions{Logger: log.Named("lease"), RenewMargin: cfg.RenewMargin,
		OnRenew: func(l lease.Lease) { st.renewed(l) }})
	if err != nil {
		return err
	}
	own, err := mgr.Acquire(ctx, netCfg, plane.attrs, prev)
	if err != nil {
		return fmt.Errorf("acquire a subnet lease: %w", err)
	}
	log.Info("subnet lease acquired", zap.Stringer("subnet", own.Subnet), zap.Stringer("public_ip", public),
		zap.String("backend", netCfg.Backend.Type), zap.Time("expires", own.Expiration))

	st = newState(netCfg, plane, public, cfg.TUNName, log)
	if err := st.adopt(own, cfg); err != nil {
		return err
	}

	eng, err := router.New(router.Config{
		Device:    plane.dev,
		Conn:      plane.conn,
		Framer:    plane.framer,
		Network:   netCfg.Network,
		SubnetLen: netCfg.SubnetLen,
		Local:     own.Subnet,
	}, log.Named("router"))
	if err != nil {
		return err
	}
	defer eng.Close()
	st.eng = eng

	peers := newPeerSet(netCfg, own, log.Named("peers"))
	reg := newMetrics(st, eng, peers.counts)
	var health *healthServer
	if cfg.HealthzPort > 0 {
		health, err = newHealthServer(net.JoinHostPort(cfg.HealthzIP, strconv.Itoa(cfg.HealthzPort)), reg, st.status)
		if err != nil {
			return err
		}
		defer health.close()
		health.ready.Store(true)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	spawn := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	if health != nil {
		go health.serve(log)
	}
	spawn("router", func() error { return eng.Run(ctx) })
	w := lease.NewWatcher(store, log.Named("watch"))
	spawn("watch", func() error {
		return w.WatchLeases(ctx, own.Subnet, func(evs []lease.Event) {
			if peers.apply(evs) {
				list := peers.list()
				eng.SetPeers(list)
				st.setPeers(list)
				if plane.vtep != nil {
					if p, ok := plane.vtep.collision(list); ok {
						attrs, err := plane.vtep.resolve(p, log)
						if err != nil {
							log.Error("VtepMAC collision not resolved", zap.Error(err))
						} else {
							mgr.Republish(attrs)
						}
					}
				}
			}
			st.setRejected(peers.rejectedList())
		})
	})
	if cfg.ForwardRules {
		if err := ensureForward(netCfg.Network); err != nil {
			log.Warn("forward rules not set: forwarded overlay traffic is dropped if the FORWARD policy is DROP "+
				"(pass --iptables-forward-rules=false to skip them)", zap.Error(err))
		} else {
			spawn("forward-rules", func() error {
				t := time.NewTicker(5 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-t.C:
						if err := ensureForward(netCfg.Network); err != nil {
							log.Warn("forward rules resync failed", zap.Error(err))
						}
					}
				}
			})
		}
	}
	var masq *ipMasq
	if cfg.IPMasq {
		masq = &ipMasq{network: netCfg.Network, subnet: own.Subnet, log: log, randomFully: true}
		if err := masq.ensure(); err != nil {
			cancel(err)
		} else {
			spawn("ip-masq", func() error { masq.run(ctx, 5*time.Second); return nil })
		}
	}
	spawn("lease", func() error {
		return mgr.Keep(ctx, netCfg, own, plane.attrs, func(l lease.Lease) {
			log.Warn("subnet lease changed", zap.Stringer("subnet", l.Subnet), zap.Time("expires", l.Expiration))
			peers.setOwn(l)
			w.SetOwn(l.Subnet)
			eng.SetLocal(l.Subnet)
			if err := st.adopt(l, cfg); err != nil {
				// Half-applied (the TUN or subnet.env still names the old
				// subnet): stop, so that a restart applies it whole rather
				// than forwarding into a black hole.
				cancel(fmt.Errorf("apply the re-acquired lease %s: %w", l.Subnet, err))
				return
			}
			if masq != nil {
				if err := masq.setSubnet(l.Subnet); err != nil {
					log.Error("move ip-masq rules to the new subnet", zap.Error(err))
				}
			}
		})
	})
	log.Info("felt agent running", zap.String("tun", cfg.TUNName), zap.Int("mtu", plane.mtu),
		zap.Stringer("listen", plane.conn.LocalAddr()))
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("felt agent stopped")
	return nil
}

// waitConfig reads <prefix>/config, retrying every second while it is absent,
// as flanneld does, with flanneld's hint logged once.
func waitConfig(ctx context.Context, store *lease.EtcdStore, prefix string, log *zap.Logger) (*lease.Config, error) {
	warned := false
	var lastErr time.Time
	for {
		c, err := store.GetConfig(ctx)
		if err == nil {
			if c.Backend.Type != "udp" && c.Backend.Type != "vxlan" {
				return nil, fmt.Errorf("network config: Backend.Type %q: felt speaks udp and vxlan", c.Backend.Type)
			}
			return c, nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, lease.ErrBadConfig):
			return nil, fmt.Errorf("%w (fix it with `felt config set`)", err)
		case !errors.Is(err, lease.ErrNoConfig):
			// etcd unreachable for a moment, a leader change: retry, as
			// flanneld does, and say so now and then.
			if time.Since(lastErr) > 10*time.Second {
				log.Warn("reading the network config failed; retrying every second", zap.Error(err))
				lastErr = time.Now()
			}
		case !warned:
			log.Warn("network config not found in etcd; waiting for it (create it with `felt config set '{\"Network\":\"10.5.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}'`, or etcdctl with ETCDCTL_API=3)",
				zap.String("key", prefix+"/config"))
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
