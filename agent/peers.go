package agent

import (
	"net/netip"
	"sort"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

// peerSet turns lease events into the router's peer list. It runs off the
// packet path, on the watch goroutine only.
type peerSet struct {
	backend string // "udp" or "vxlan"
	port    uint16 // peers are reached at PublicIP:port (all nodes share Backend.Port, as in flannel)
	log     *zap.Logger
	peers   map[netip.Prefix]router.Peer
	ignored map[netip.Prefix]string // leases skipped, with why: warned once per lease, not per packet
}

func newPeerSet(backend string, port uint16, log *zap.Logger) *peerSet {
	return &peerSet{backend: backend, port: port, log: log,
		peers: map[netip.Prefix]router.Peer{}, ignored: map[netip.Prefix]string{}}
}

// apply folds events into the set and reports whether the peer list changed.
func (s *peerSet) apply(evs []lease.Event) bool {
	changed := false
	for _, ev := range evs {
		sn := ev.Lease.Subnet
		switch ev.Type {
		case lease.Removed:
			if _, ok := s.peers[sn]; ok {
				delete(s.peers, sn)
				changed = true
				s.log.Info("peer removed", zap.Stringer("subnet", sn))
			}
			delete(s.ignored, sn)
		case lease.Added:
			p, why := s.peerOf(ev.Lease)
			if why != "" {
				if s.ignored[sn] != why {
					s.log.Warn("ignoring lease", zap.Stringer("subnet", sn),
						zap.Stringer("public_ip", ev.Lease.Attrs.PublicIP), zap.String("reason", why))
					s.ignored[sn] = why
				}
				if _, ok := s.peers[sn]; ok {
					delete(s.peers, sn)
					changed = true
				}
				continue
			}
			delete(s.ignored, sn)
			if old, ok := s.peers[sn]; !ok || old != p {
				s.peers[sn] = p
				changed = true
				s.log.Info("peer added", zap.Stringer("subnet", sn), zap.Stringer("addr", p.Addr))
			}
		}
	}
	return changed
}

// peerOf maps a lease to a peer, or says why the lease is not one: flanneld's
// vxlan nodes ignore every lease whose BackendType is not "vxlan"; its udp
// nodes take any lease.
func (s *peerSet) peerOf(l lease.Lease) (router.Peer, string) {
	a := l.Attrs
	if !a.PublicIP.Is4() {
		return router.Peer{}, "no IPv4 PublicIP"
	}
	p := router.Peer{Subnet: l.Subnet, Addr: netip.AddrPortFrom(a.PublicIP, s.port)}
	if s.backend == "vxlan" {
		if a.BackendType != "vxlan" {
			bt := a.BackendType
			if bt == "" {
				bt = "udp (none)"
			}
			return router.Peer{}, "backend type " + bt + " is not vxlan"
		}
		_, mac, err := a.VXLAN()
		if err != nil {
			return router.Peer{}, err.Error()
		}
		copy(p.MAC[:], mac)
	}
	return p, ""
}

func (s *peerSet) list() []router.Peer {
	out := make([]router.Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subnet.Addr().Less(out[j].Subnet.Addr()) })
	return out
}
