package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// state is what the agent knows of itself and its peers, for /status,
// /metrics and re-acquisition. Guarded by mu; never touched on the packet path.
type state struct {
	netCfg *lease.Config
	plane  *plane
	public netip.Addr
	tun    string
	log    *zap.Logger
	routes *peerRoutes // set once by setRoutes before the node runs; nil: no direct peers

	mu         sync.Mutex
	own        lease.Lease
	peers      []router.Peer
	rejected   []RejectedLease
	renewals   int // renewals of the own lease
	reacquired int // leases taken again after one was lost
}

// newState returns the state of a node on plane p; tunName is ignored for a
// backend without a TUN (status shows none).
func newState(c *lease.Config, p *plane, public netip.Addr, tunName string, log *zap.Logger) *state {
	if !p.hasTUN() {
		tunName = ""
	}
	return &state{netCfg: c, plane: p, public: public, tun: tunName, log: log}
}

// adopt configures the TUN (packet backends) for lease l and takes it as
// the own lease. It runs at start and again whenever the keeper re-acquires
// a lease; writeEnv follows once the firewall has the lease's rules.
func (s *state) adopt(l lease.Lease) error {
	if s.plane.hasTUN() {
		if err := s.configureTUN(l); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.own.Key().IsValid() {
		s.reacquired++
	}
	s.own = l
	s.mu.Unlock()
	return nil
}

// writeEnv writes subnet.env for lease l. flanneld writes it after its
// masquerade and forward rules, so that a CNI plugin waiting for the file
// (flannel's does) sets up no container before they are in place; felt
// keeps that order (run, reacquired).
func (s *state) writeEnv(l lease.Lease, cfg Config) error {
	env := lease.SubnetEnv{MTU: s.plane.mtu, IPMasq: cfg.IPMasq}
	if l.Subnet.IsValid() { // none on an IPv6-only node: no IPv4 lines, as flanneld
		env.Network, env.Subnet = s.netCfg.Network, l.Subnet
	}
	if l.IPv6Subnet.IsValid() {
		env.IPv6Network, env.IPv6Subnet = s.netCfg.IPv6Network, l.IPv6Subnet
	}
	if err := lease.WriteSubnetEnv(cfg.SubnetFile, env); err != nil {
		return fmt.Errorf("write %s: %w", cfg.SubnetFile, err)
	}
	return nil
}

// configureTUN gives the TUN the address, MTU and route for lease l's
// subnets, both families (felt0 is felt's alone: other addresses and routes
// on it go, an IPv4-only lease's run removes an earlier run's IPv6 side);
// adopt and a TUN rebuilt after deletion share it.
func (s *state) configureTUN(l lease.Lease) error {
	nc := tun.NetConfig{MTU: s.plane.mtu, Exclusive: true}
	if l.Subnet.IsValid() { // an IPv6-only lease: no IPv4 address nor route
		nc.Addr, nc.Network = netip.PrefixFrom(l.Subnet.Addr(), 32), s.netCfg.Network
		nc.Routes = []netip.Prefix{s.netCfg.Network}
	}
	s.withIPv6(&nc, l)
	skipped, err := tun.Configure(s.tun, nc)
	if err != nil {
		return fmt.Errorf("configure %s: %w", s.tun, err)
	}
	for _, sk := range skipped {
		s.log.Warn("TUN setting skipped", zap.String("what", sk))
	}
	return nil
}

// current is the own lease now.
func (s *state) current() lease.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.own
}

// renewed records a renewal of the own lease.
func (s *state) renewed(l lease.Lease) {
	s.mu.Lock()
	s.own = l
	s.renewals++
	s.mu.Unlock()
}

// setRoutes records the node's route keeper (nil for none), for the peers'
// paths; called once, before anything reads the state.
func (s *state) setRoutes(r *peerRoutes) { s.routes = r }

// pathOf is how the peer at sn is reached.
func (s *state) pathOf(sn netip.Prefix) string {
	switch {
	case s.plane.kind == leaseOnly:
		return pathExternal
	case s.routes != nil:
		return s.routes.path(sn)
	}
	return pathTunnelled
}

// pathCounts counts the current peers by path.
func (s *state) pathCounts() map[string]int {
	s.mu.Lock()
	peers := s.peers
	s.mu.Unlock()
	n := map[string]int{}
	for _, p := range peers {
		n[s.pathOf(p.Subnet)]++
	}
	return n
}

func (s *state) setPeers(p []router.Peer) {
	s.mu.Lock()
	s.peers = p
	s.mu.Unlock()
}

func (s *state) setRejected(r []RejectedLease) {
	s.mu.Lock()
	s.rejected = r
	s.mu.Unlock()
}

// Status is what /status returns and `felt status` prints.
type Status struct {
	Subnet   string `json:"subnet"` // empty on an IPv6-only node
	PublicIP string `json:"public_ip"`
	// The IPv6 side, with EnableIPv6: the own IPv6 subnet, PublicIPv6 and
	// (vxlan) the BackendV6Data VtepMAC.
	IPv6Subnet string            `json:"ipv6_subnet,omitempty"`
	PublicIPv6 string            `json:"public_ipv6,omitempty"`
	VtepMACv6  string            `json:"vtep_mac_v6,omitempty"`
	Backend    string            `json:"backend"`
	TUN        string            `json:"tun,omitempty"` // empty: the backend has no TUN
	MTU        int               `json:"mtu"`
	VtepMAC    string            `json:"vtep_mac,omitempty"`
	Expires    time.Time         `json:"lease_expires"`
	Peers      []PeerStatus      `json:"peers"`
	Rejected   []RejectedLease   `json:"rejected_leases,omitempty"`
	Counters   map[string]uint64 `json:"counters"`
	Timestamp  time.Time         `json:"time"`
}

// RejectedLease is a lease not taken as a peer, with the rule it broke.
type RejectedLease struct {
	Subnet   string `json:"subnet"`
	PublicIP string `json:"public_ip"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
}

// PeerStatus is one peer in Status.
type PeerStatus struct {
	Subnet string `json:"subnet"`
	Addr   string `json:"addr"`
	MAC    string `json:"mac,omitempty"`
	// Path is how packets reach the peer: "direct" (a kernel route via its
	// PublicIP: host-gw, vxlan DirectRouting), "tunnelled" (felt's TUN:
	// its packet loops, or wireguard-go) or "external" (extension: its
	// commands decide).
	Path string `json:"path"`

	// wireguard only: the peer's key and wireguard-go's view of it.
	PublicKey     string     `json:"public_key,omitempty"`
	Endpoint      string     `json:"endpoint,omitempty"`       // where it last sent from, or the lease's
	LastHandshake *time.Time `json:"last_handshake,omitempty"` // nil: none yet
	RxBytes       uint64     `json:"rx_bytes,omitempty"`       // encrypted bytes received from it
	TxBytes       uint64     `json:"tx_bytes,omitempty"`       // encrypted bytes sent to it
}

// status is the agent's state for /status, without the engine's counters.
func (s *state) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{PublicIP: s.public.String(), Backend: s.plane.backend,
		TUN: s.tun, MTU: s.plane.mtu, Expires: s.own.Expiration, Timestamp: time.Now()}
	if s.own.Subnet.IsValid() {
		st.Subnet = s.own.Subnet.String()
	}
	if s.own.IPv6Subnet.IsValid() {
		st.IPv6Subnet = s.own.IPv6Subnet.String()
		if a := s.own.Attrs.PublicIPv6; a.IsValid() {
			st.PublicIPv6 = a.String()
		}
	}
	if s.plane.vtep != nil {
		if s.own.Subnet.IsValid() {
			st.VtepMAC = s.plane.vtep.current().String()
		}
		if _, mac6 := s.plane.vtep.macs(); mac6 != nil {
			st.VtepMACv6 = mac6.String()
		}
	}
	for _, p := range s.peers {
		ps := PeerStatus{Subnet: p.Subnet.String(), Addr: p.Addr.String(), Path: s.pathOf(p.Subnet)}
		if p.Addr.Port() == 0 {
			ps.Addr = p.Addr.Addr().String() // no packet path, no port
		}
		if p.MAC != ([6]byte{}) {
			ps.MAC = net.HardwareAddr(p.MAC[:]).String()
		}
		st.Peers = append(st.Peers, ps)
	}
	st.Rejected = s.rejected
	return st
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
