package agent

import (
	"context"
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

// backendKind is how a backend turns leases into forwarding. It is chosen
// once, by kindOf, from the config's Backend.Type; everything else asks the
// plane for its kind. The drop-in lifecycle follows it: only packetBackend
// keeps a persistent TUN that is rebuilt when deleted (tunkeep.go); only the
// kinds with a TUN configure one; readiness waits for what the kind builds
// (run, markReady); the firewall rules are the same for every kind.
type backendKind int

const (
	// packetBackend (udp, vxlan): a persistent TUN, a socket and felt's
	// packet loops (engSlot); vxlan with DirectRouting also programs kernel
	// routes to on-link peers.
	packetBackend backendKind = iota
	// wireguardBackend (wireguard): a TUN whose packets wireguard-go
	// encrypts and sends on its own socket; no felt engine.
	wireguardBackend
	// routeBackend (host-gw): kernel routes to every peer, nothing else.
	routeBackend
	// leaseOnly (alloc, extension): a lease and subnet.env; extension runs
	// the config's commands, alloc nothing at all.
	leaseOnly
)

// kindOf is the one place that maps Backend.Type to what the agent builds.
func kindOf(t string) (backendKind, error) {
	switch t {
	case lease.BackendUDP, lease.BackendVXLAN:
		return packetBackend, nil
	case lease.BackendWireGuard:
		return wireguardBackend, nil
	case lease.BackendHostGW:
		return routeBackend, nil
	case lease.BackendAlloc, lease.BackendExtension:
		return leaseOnly, nil
	}
	// lease.Config.Validate admits only the types above and tells the user
	// so; this guards against lease learning a backend before the agent.
	return 0, fmt.Errorf("backend %q: the agent builds no data plane for it", t)
}

// Peer paths, as /status and /metrics name them.
const (
	pathDirect    = "direct"    // a kernel route <subnet> via <PublicIP>
	pathTunnelled = "tunnelled" // felt's TUN: its packet loops, or wireguard-go
	pathExternal  = "external"  // extension: whatever its commands set up
)

// newPlane builds the backend's parts before a lease is taken, as flanneld
// creates its device first: a port in use, a missing TUN permission, a NAT
// under host-gw or a failing PreStartupCommand is reported before anything
// is written to etcd.
func newPlane(c *lease.Config, ext extIface, public netip.Addr, cfg Config, log *zap.Logger) (*plane, error) {
	kind, err := kindOf(c.Backend.Type)
	if err != nil {
		return nil, err
	}
	switch kind {
	case packetBackend:
		return newPacketPlane(c, ext, public, cfg, log)
	case wireguardBackend:
		return newWireGuardPlane(c.Backend, ext, public, cfg, log)
	}
	if err := removeStaleTUN(cfg.TUNName, log); err != nil {
		return nil, err
	}
	return newRoutePlane(c, ext, public, cfg.PublicIPv6, log)
}

// newRoutePlane is the plane of host-gw, alloc and extension: no TUN, no
// socket; subnet.env's MTU is the interface's, as flanneld's. public6 is
// the resolved PublicIPv6 (invalid without EnableIPv6); host-gw publishes
// it, the gateway of its peers' IPv6 routes.
func newRoutePlane(c *lease.Config, ext extIface, public, public6 netip.Addr, log *zap.Logger) (*plane, error) {
	b := c.Backend
	p := &plane{backend: b.Type, mtu: ext.MTU, link: ext.Index}
	p.kind, _ = kindOf(b.Type)
	switch b.Type {
	case lease.BackendHostGW:
		if public != ext.Addr {
			return nil, fmt.Errorf("host-gw backend: --public-ip %s differs from %s's address %s: "+
				"hosts behind NAT cannot route to each other's PublicIP (flanneld refuses this too; drop --public-ip or use vxlan)",
				public, ext.Name, ext.Addr)
		}
		p.attrs = lease.NewHostGWAttrs(public)
		if c.EnableIPv6 {
			p.attrs.PublicIPv6 = public6
		}
	case lease.BackendAlloc:
		p.attrs = lease.NewAllocAttrs(public)
	case lease.BackendExtension:
		p.ext = newExtension(b.Extension, c.Network, log.Named("extension"))
		out, ran, err := p.ext.preStartup()
		if err != nil {
			return nil, err
		}
		// flanneld's extension publishes the interface's address, not --public-ip.
		p.attrs = lease.NewExtensionAttrs(ext.Addr, out, ran)
	}
	return p, nil
}

// hasTUN reports whether the plane has felt's TUN (udp, vxlan, wireguard).
func (p *plane) hasTUN() bool { return p.kind == packetBackend || p.kind == wireguardBackend }

// watches reports whether the node follows the other leases: every backend
// but alloc, whose flanneld network only holds its lease.
func (p *plane) watches() bool { return p.backend != lease.BackendAlloc }

// afterLease runs what the backend does once the lease is taken, before
// subnet.env is written: extension's PostStartupCommand.
func (p *plane) afterLease(c *lease.Config, l lease.Lease) error {
	if p.ext == nil {
		return nil
	}
	return p.ext.postStartup(l, p.attrs.PublicIP)
}

// runFields are the plane's parts for the "running" log line.
func (p *plane) runFields(tunName string) []zap.Field {
	f := []zap.Field{zap.String("backend", p.backend), zap.Int("mtu", p.mtu)}
	if p.hasTUN() {
		f = append(f, zap.String("tun", tunName))
	}
	if p.kind == packetBackend || p.kind == wireguardBackend {
		f = append(f, zap.String("listen", p.listenAddr()))
	}
	if p.kind == packetBackend {
		f = append(f, zap.Duration("linger", p.linger))
	}
	return f
}

// newForwarder builds the node's forwarding for its backend and sets n.eng:
// felt's packet engine (udp, vxlan; in an engSlot that rebuilds it with the
// TUN), wireguard-go's device (wireguard), kernel routes (host-gw, vxlan
// DirectRouting), an engine and routes, or nothing. It returns what
// /metrics and /status read of felt's engine, nil without one.
//
// With DirectRouting the router's peer table keeps every peer, the direct
// ones too: the kernel's /SubnetLen route via the peer's PublicIP is more
// specific than the TUN's route to the whole Network, so it wins for
// everything the host sends, while a peer that still sends felt vxlan (one
// whose own on-link test says otherwise) is accepted, and a peer that stops
// being on-link is tunnelled the moment its route goes, with no table change.
func (n *node) newForwarder() (engineView, error) {
	var p paths
	var view engineView
	switch n.plane.kind {
	case packetBackend:
		eng, err := n.newEngine(n.own)
		if err != nil {
			return nil, err
		}
		slot := newEngSlot(eng, n.cfg.TUNName, n.own.Subnet, n.rebuildPlane, n.log.Named("tun"))
		slot.pause = n.pause
		n.closers = append(n.closers, slot.close)
		p.tunnel, view = slot, slot
	case wireguardBackend:
		// wireguard's packet path is wireguard-go's: no router.Engine.
		p.tunnel = &wgForwarder{dev: n.plane.wg, peers: n.peers, log: n.log.Named("wireguard")}
	}
	b := n.netCfg.Backend
	switch {
	case b.Type == lease.BackendHostGW:
		n.routes = newPeerRoutes(n.plane.link, false, n.log.Named("routes"))
	case b.Type == lease.BackendVXLAN && b.DirectRouting:
		n.routes = newPeerRoutes(0, true, n.log.Named("routes"))
	}
	p.routes = n.routes
	n.eng = p
	n.st.setRoutes(n.routes)
	return view, nil
}

// paths is the node's forwarder: the tunnel (felt's engine or wireguard-go)
// and the route keeper, either of which may be nil.
type paths struct {
	tunnel forwarder
	routes *peerRoutes
}

// Run runs the tunnel until ctx ends; without one it just waits (the route
// keeper's check runs on its own goroutine, see node.run).
func (p paths) Run(ctx context.Context) error {
	if p.tunnel != nil {
		return p.tunnel.Run(ctx)
	}
	<-ctx.Done()
	return nil
}

func (p paths) SetPeers(peers []router.Peer) {
	if p.tunnel != nil {
		p.tunnel.SetPeers(peers)
	}
	if p.routes != nil {
		p.routes.setPeers(peers)
	}
}

func (p paths) SetLocal(local netip.Prefix) {
	if p.tunnel != nil {
		p.tunnel.SetLocal(local)
	}
}

func (p paths) SetLocal6(local netip.Prefix) {
	if p.tunnel != nil {
		p.tunnel.SetLocal6(local)
	}
}

// SetFramer swaps the tunnel's framing (a new VtepMAC, vxlan only).
func (p paths) SetFramer(f router.Framer) error {
	if p.tunnel == nil {
		return nil
	}
	return p.tunnel.SetFramer(f)
}
