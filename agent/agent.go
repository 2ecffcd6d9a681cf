// Package agent is felt's library entry point: Run wires the control plane
// (lease) to the forwarding for one host, as flanneld does for its udp,
// vxlan, wireguard, host-gw, alloc and extension backends; backend.go maps
// Backend.Type to the kind of forwarding the agent builds.
//
// Run does it in two halves, each readable alone: assemble builds a node in
// order (health server, etcd with retry, config, interface, the backend's
// plane: socket and persistent TUN for udp and vxlan, lease, forwarding) and
// node.run runs it, then reports ready (/readyz, sd_notify). Concurrency: the
// health server runs from the start; node.run starts one goroutine each for
// the forwarding (udp, vxlan: engSlot, which rebuilds the engine if the TUN
// is deleted, two packet loops inside router.Engine; wireguard: a wait on
// wireguard-go's device), the lease watcher (not for alloc), the route check
// (host-gw, DirectRouting), the lease keeper (renewal and re-acquisition)
// and, as configured, the firewall resync and the blackhole route check. The
// first fatal error cancels the rest; Run returns when all ended.
package agent

import (
	"context"

	"go.uber.org/zap"
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
	n, err := assemble(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.close()
	if err := n.run(ctx); err != nil {
		return err
	}
	log.Info("felt agent stopped")
	return nil
}
