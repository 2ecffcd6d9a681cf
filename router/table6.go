package router

import (
	"net/netip"
	"slices"
)

// table6 is a Table's IPv6 part. Peers whose subnet is exactly the IPv6
// pool's length and inside it (every flannel lease) are keyed by their
// subnet address, so a destination is found by masking it to that length
// and one map lookup; netip.Addr keys hash without allocating. Other IPv6
// peers are scanned, longest prefix first: longer ones before the map,
// shorter ones after it.
type table6 struct {
	net      netip.Prefix // the IPv6 pool; zero if none
	bits     int          // IPv6SubnetLen
	bySubnet map[netip.Addr]int32
	longer   []int32
	shorter  []int32
}

// build indexes the IPv6 peers idx (index+1 into peers, in peers order).
func (t *table6) build(peers []Peer, idx []int32, network netip.Prefix, bits int) {
	network = network.Masked()
	pooled := network.IsValid() && network.Addr().Is6() && bits >= network.Bits() && bits <= 128
	if pooled {
		t.net, t.bits = network, bits
		t.bySubnet = make(map[netip.Addr]int32, len(idx))
	}
	var other []int32
	for _, i := range idx {
		sn := peers[i-1].Subnet
		if pooled && sn.Bits() == bits && network.Contains(sn.Addr()) {
			t.bySubnet[sn.Addr()] = i // the later peer wins, as for IPv4
			continue
		}
		other = append(other, i)
	}
	slices.SortStableFunc(other, func(a, b int32) int { return peers[b-1].Subnet.Bits() - peers[a-1].Subnet.Bits() })
	other = dedupLast(peers, other)
	for _, i := range other {
		if pooled && peers[i-1].Subnet.Bits() > bits {
			t.longer = append(t.longer, i)
		} else {
			t.shorter = append(t.shorter, i)
		}
	}
}

// lookup returns the index+1 of the peer whose subnet holds the IPv6
// address dst, or 0.
func (t *table6) lookup(peers []Peer, dst netip.Addr) int32 {
	for _, i := range t.longer {
		if peers[i-1].Subnet.Contains(dst) {
			return i
		}
	}
	if t.bySubnet != nil && t.net.Contains(dst) {
		if p, err := dst.Prefix(t.bits); err == nil {
			if i := t.bySubnet[p.Addr()]; i > 0 {
				return i
			}
		}
	}
	for _, i := range t.shorter {
		if peers[i-1].Subnet.Contains(dst) {
			return i
		}
	}
	return 0
}
