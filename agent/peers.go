package agent

import (
	"errors"
	"net/netip"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/wg"
)

// Rules, besides lease.CheckPeer's, for which a lease is not taken as a peer.
const (
	rulePublicIP    = "public_ip"    // no IPv4 PublicIP
	ruleBackendType = "backend_type" // a vxlan, wireguard, host-gw or extension node and a lease of another backend
	ruleBackendData = "backend_data" // a vxlan (wireguard) lease without a usable VNI and VtepMAC (PublicKey)
)

// peer is a peer as the router routes it, plus its wireguard public key
// (zero for udp and vxlan), so that a changed key is a changed peer.
type peer struct {
	router.Peer
	key wg.Key
	seq uint64 // peerSet.seq when the lease was added or last changed
}

// rejection is why a lease is not a peer.
type rejection struct {
	publicIP netip.Addr
	rule     string // a lease.Rule* or rule* label
	why      string
}

// peerSet turns lease events into the router's peer list. apply runs off the
// packet path, on the watch goroutine only; setOwn and the counts may be used
// from any goroutine.
type peerSet struct {
	cfg      *lease.Config
	port     uint16 // peers are reached at PublicIP:port (all nodes share Backend.Port, as in flannel); 0 without a packet path
	log      *zap.Logger
	peers    map[netip.Prefix]peer
	peers6   map[netip.Prefix]router.Peer // the IPv6 side, keyed like peers by the lease's IPv4 subnet (ipv6.go)
	why6     map[netip.Prefix]string      // why a lease's IPv6 side is not used, warned once
	rejected map[netip.Prefix]rejection   // warned and counted once per lease and reason, not per event
	counts   *ruleCounts
	seq      uint64 // counts the leases added or changed, to order them

	mu  sync.Mutex
	own lease.Lease
}

func newPeerSet(cfg *lease.Config, own lease.Lease, log *zap.Logger) *peerSet {
	port := uint16(0)
	if k, _ := kindOf(cfg.Backend.Type); k == packetBackend || k == wireguardBackend {
		port = uint16(cfg.Backend.UDPPort())
	}
	return &peerSet{cfg: cfg, port: port, log: log, own: own, peers: map[netip.Prefix]peer{},
		peers6: map[netip.Prefix]router.Peer{}, why6: map[netip.Prefix]string{}, rejected: map[netip.Prefix]rejection{},
		counts: newRuleCounts()}
}

// setOwn records the own lease after the keeper re-acquired one.
func (s *peerSet) setOwn(l lease.Lease) {
	s.mu.Lock()
	s.own = l
	s.mu.Unlock()
}

func (s *peerSet) ownLease() lease.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.own
}

// apply folds events into the set and reports whether the peer list changed.
func (s *peerSet) apply(evs []lease.Event) bool {
	changed := false
	for _, ev := range evs {
		sn := ev.Lease.Key() // the IPv6 subnet of an IPv6-only lease
		switch ev.Type {
		case lease.Removed:
			_, had4 := s.peers[sn]
			_, had6 := s.peers6[sn]
			if had4 || had6 {
				delete(s.peers, sn)
				delete(s.peers6, sn)
				changed = true
				s.log.Info("peer removed", zap.Stringer("subnet", sn))
			}
			delete(s.rejected, sn)
			delete(s.why6, sn)
		case lease.Added:
			if s.add(ev.Lease) {
				changed = true
			}
		}
	}
	return changed
}

// add takes l as a peer or rejects it; it reports whether the peers changed.
func (s *peerSet) add(l lease.Lease) bool {
	sn := l.Key()
	p, rej := s.peerOf(l)
	if rej != nil {
		if old, ok := s.rejected[sn]; !ok || old.why != rej.why {
			s.log.Warn("ignoring lease", zap.Stringer("subnet", sn), zap.Stringer("public_ip", rej.publicIP),
				zap.String("rule", rej.rule), zap.String("reason", rej.why))
			s.counts.add(rej.rule)
			s.rejected[sn] = *rej
		}
		_, had := s.peers[sn]
		_, had6 := s.peers6[sn]
		delete(s.peers, sn)
		delete(s.peers6, sn)
		return had || had6
	}
	delete(s.rejected, sn)
	changed6 := s.add6(l)
	if !s.cfg.EnableIPv4 {
		return changed6 // IPv6-only: the lease has no IPv4 side to route
	}
	if old, ok := s.peers[sn]; ok && old.Peer == p.Peer && old.key == p.key {
		return changed6
	}
	s.seq++
	p.seq = s.seq
	s.peers[sn] = p
	fields := []zap.Field{zap.Stringer("subnet", sn), zap.Stringer("addr", p.Addr)}
	if p.key != (wg.Key{}) {
		fields = append(fields, zap.Stringer("public_key", p.key))
	}
	s.log.Info("peer added", fields...)
	return true
}

// add6 takes or drops the IPv6 side of an accepted lease; it reports
// whether that changed.
func (s *peerSet) add6(l lease.Lease) bool {
	sn := l.Key()
	p6, why, ok := s.peer6Of(l)
	old, had := s.peers6[sn]
	if !ok {
		if why != "" && s.why6[sn] != why {
			s.log.Warn("IPv6 side of lease not used", zap.Stringer("subnet", sn), zap.Stringer("ipv6_subnet", l.IPv6Subnet),
				zap.String("reason", why))
			s.why6[sn] = why
		}
		delete(s.peers6, sn)
		return had
	}
	delete(s.why6, sn)
	if had && old == p6 {
		return false
	}
	s.peers6[sn] = p6
	s.log.Info("peer added", zap.Stringer("subnet", p6.Subnet), zap.Stringer("addr", p6.Addr))
	return true
}

// peerOf maps a lease to a peer, or says why the lease is not one: its
// subnets must pass lease.CheckPeer; flanneld's vxlan, wireguard, host-gw
// and extension nodes ignore every lease whose BackendType is not their
// own; its udp nodes take any backend.
func (s *peerSet) peerOf(l lease.Lease) (peer, *rejection) {
	a := l.Attrs
	reject := func(rule, why string) (peer, *rejection) {
		return peer{}, &rejection{publicIP: a.PublicIP, rule: rule, why: why}
	}
	if err := lease.CheckPeer(s.cfg, s.ownLease(), l); err != nil {
		var pe *lease.PeerError
		if errors.As(err, &pe) {
			return reject(pe.Rule, err.Error())
		}
		return reject(lease.RuleOutsideNetwork, err.Error())
	}
	if !a.PublicIP.Is4() {
		return reject(rulePublicIP, "no IPv4 PublicIP")
	}
	p := peer{Peer: router.Peer{Subnet: l.Subnet, Addr: netip.AddrPortFrom(a.PublicIP, s.port)}}
	if s.cfg.Backend.Type == lease.BackendWireGuard {
		return s.wireguardPeer(p, a)
	}
	if t := s.cfg.Backend.Type; (t == lease.BackendHostGW || t == lease.BackendExtension) && a.BackendType != t {
		return reject(ruleBackendType, "backend type "+backendName(a.BackendType)+" is not "+t)
	}
	if s.cfg.Backend.Type == lease.BackendVXLAN {
		if a.BackendType != lease.BackendVXLAN {
			return reject(ruleBackendType, "backend type "+backendName(a.BackendType)+" is not vxlan")
		}
		if !s.cfg.EnableIPv4 {
			return p, nil // IPv6-only: no BackendData; peer6Of reads BackendV6Data
		}
		_, mac, err := a.VXLAN()
		if err != nil {
			return reject(ruleBackendData, err.Error())
		}
		copy(p.MAC[:], mac)
	}
	return p, nil
}

// backendName names a lease's BackendType for a log line.
func backendName(bt string) string {
	if bt == "" {
		return "udp (none)"
	}
	return bt
}

// accepts reports whether l passes peerOf's rules (it need not be in the
// set: a Removed event's lease is checked as it was).
func (s *peerSet) accepts(l lease.Lease) bool {
	_, rej := s.peerOf(l)
	return rej == nil
}

func (s *peerSet) list() []router.Peer {
	out := make([]router.Peer, 0, len(s.peers)+len(s.peers6))
	for _, p := range s.peers {
		out = append(out, p.Peer)
	}
	for _, p := range s.peers6 {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subnet.Addr().Less(out[j].Subnet.Addr()) })
	return out
}

// rejectedList is the leases currently rejected, for /status, by subnet.
func (s *peerSet) rejectedList() []RejectedLease {
	sns := make([]netip.Prefix, 0, len(s.rejected))
	for sn := range s.rejected {
		sns = append(sns, sn)
	}
	sort.Slice(sns, func(i, j int) bool {
		return sns[i].Addr().Less(sns[j].Addr()) || sns[i].Addr() == sns[j].Addr() && sns[i].Bits() < sns[j].Bits()
	})
	out := make([]RejectedLease, 0, len(sns))
	for _, sn := range sns {
		r := s.rejected[sn]
		out = append(out, RejectedLease{Subnet: sn.String(), PublicIP: r.publicIP.String(), Rule: r.rule, Reason: r.why})
	}
	return out
}
