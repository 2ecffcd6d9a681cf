package router

import (
	"net/netip"
	"slices"
)

// maxSlots caps the dense array: 2^16 slots of 4 bytes (256 KiB). Pools
// with more subnets than that use a map keyed by the slot number.
const maxSlots = 1 << 16

// Table maps destinations to peers. It is an immutable snapshot: build a new
// one (NewTable) for every change and publish it; readers on any goroutine
// may use a Table without locks. Lookup and BySender do not allocate.
type Table struct {
	peers []Peer // owned copy; indices below point into it

	// The pool's subnets all have length subnetLen, so the slot of an IPv4
	// destination is (dst - base) >> shift. dense is used when the pool has
	// at most maxSlots subnets, sparse otherwise; both hold index+1 (0: none).
	dense  []int32
	sparse map[uint32]int32
	base   uint32
	shift  uint8
	mask   uint32 // valid slot bits after the shift
	pooled bool   // network is an IPv4 prefix the dense/sparse index covers
	net    netip.Prefix

	// IPv6 peers (table6.go).
	v6 table6

	// IPv4 peers that the slot index cannot hold (another length, outside
	// the pool), longest prefix first. longer are more specific than a
	// pool subnet and are checked before the slot; shorter after it.
	longer  []int32
	shorter []int32

	bySender map[netip.Addr]int32
	// sameSender[i-1] is the previous peer (index+1) with peer i's public
	// IP: a host's stale lease may sit beside its new one until it expires.
	sameSender []int32
	skipped    []error
}

// NewTable builds a table for the pool network whose leases are subnetLen
// long. Peers that fail Validate are skipped (see Skipped). When two peers
// claim the same subnet or public IP, the later one in peers wins.
func NewTable(network netip.Prefix, subnetLen int, peers []Peer) *Table {
	return NewDualTable(network, subnetLen, netip.Prefix{}, 0, peers)
}

// NewDualTable is NewTable with an IPv6 pool too (flannel's IPv6Network and
// IPv6SubnetLen; zero for none): IPv6 peers' subnets of that length are
// found by one map lookup, others by a scan (table6.go).
func NewDualTable(network netip.Prefix, subnetLen int, network6 netip.Prefix, subnetLen6 int, peers []Peer) *Table {
	t := &Table{bySender: make(map[netip.Addr]int32, len(peers))}
	network = network.Masked()
	if network.IsValid() && network.Addr().Is4() && subnetLen >= network.Bits() && subnetLen <= 32 {
		t.pooled = true
		t.net = network
		b := network.Addr().As4()
		t.base = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		t.shift = uint8(32 - subnetLen)
		bits := subnetLen - network.Bits()
		t.mask = uint32(1)<<bits - 1 // bits <= 32; 1<<32 on uint32 is 0, so -1 gives all ones
		if bits <= 16 {
			t.dense = make([]int32, 1<<bits)
		} else {
			t.sparse = make(map[uint32]int32)
		}
	}
	t.peers = make([]Peer, 0, len(peers))
	t.sameSender = make([]int32, 0, len(peers))
	var other, other6 []int32
	for _, p := range peers {
		if err := p.Validate(); err != nil {
			t.skipped = append(t.skipped, err)
			continue
		}
		p.Subnet = p.Subnet.Masked()
		p.Addr = netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port())
		t.peers = append(t.peers, p)
		idx := int32(len(t.peers))
		t.sameSender = append(t.sameSender, t.bySender[p.Addr.Addr()])
		t.bySender[p.Addr.Addr()] = idx
		if p.Subnet.Addr().Is6() {
			other6 = append(other6, idx)
			continue
		}
		if t.pooled && p.Subnet.Bits() == subnetLen && network.Contains(p.Subnet.Addr()) {
			slot := t.slot(p.Subnet.Addr())
			if t.dense != nil {
				t.dense[slot] = idx
			} else {
				t.sparse[slot] = idx
			}
			continue
		}
		other = append(other, idx)
	}
	// Longest prefix first; for equal prefixes the later peer wins, so sort
	// stably and keep the last of each subnet.
	slices.SortStableFunc(other, func(a, b int32) int {
		return t.peers[b-1].Subnet.Bits() - t.peers[a-1].Subnet.Bits()
	})
	other = dedupLast(t.peers, other)
	for _, idx := range other {
		if t.pooled && t.peers[idx-1].Subnet.Bits() > subnetLen {
			t.longer = append(t.longer, idx)
		} else {
			t.shorter = append(t.shorter, idx)
		}
	}
	t.v6.build(t.peers, other6, network6, subnetLen6)
	return t
}

// dedupLast drops all but the last (in input order) of peers sharing a
// subnet; idx is sorted by prefix length, stable.
func dedupLast(peers []Peer, idx []int32) []int32 {
	out := idx[:0]
	for i, a := range idx {
		dup := false
		for _, b := range idx[i+1:] {
			if peers[a-1].Subnet == peers[b-1].Subnet {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

func (t *Table) slot(a netip.Addr) uint32 {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return ((v - t.base) >> t.shift) & t.mask
}

// Lookup returns the peer whose subnet holds dst (longest prefix), or nil.
// The result points into the table: valid as long as the table, read-only.
func (t *Table) Lookup(dst netip.Addr) *Peer {
	if i := t.lookup(dst); i > 0 {
		return &t.peers[i-1]
	}
	return nil
}

// lookup returns index+1 of the peer for dst, 0 if none.
func (t *Table) lookup(dst netip.Addr) int32 {
	if dst.Is6() {
		return t.v6.lookup(t.peers, dst)
	}
	for _, i := range t.longer {
		if t.peers[i-1].Subnet.Contains(dst) {
			return i
		}
	}
	if t.pooled && dst.Is4() && t.net.Contains(dst) {
		var i int32
		if t.dense != nil {
			i = t.dense[t.slot(dst)]
		} else {
			i = t.sparse[t.slot(dst)]
		}
		if i > 0 {
			return i
		}
	}
	for _, i := range t.shorter {
		if t.peers[i-1].Subnet.Contains(dst) {
			return i
		}
	}
	return 0
}

// Sender returns the peer at public IP addr whose subnet holds src, among
// every peer with that IP; nil if none.
func (t *Table) Sender(addr, src netip.Addr) *Peer {
	for i := t.bySender[addr.Unmap()]; i > 0; i = t.sameSender[i-1] {
		if t.peers[i-1].Subnet.Contains(src) {
			return &t.peers[i-1]
		}
	}
	return nil
}

// BySender returns the peer whose public IP is addr (IPv4-mapped IPv6
// addresses match their IPv4 form), or nil; of peers sharing an IP, the
// last given to NewTable.
func (t *Table) BySender(addr netip.Addr) *Peer {
	if i := t.bySender[addr.Unmap()]; i > 0 {
		return &t.peers[i-1]
	}
	return nil
}

// Len is the number of peers in the table.
func (t *Table) Len() int { return len(t.peers) }

// Peers returns the table's peers (read-only; shared with the table).
func (t *Table) Peers() []Peer { return t.peers }

// Skipped returns why each skipped peer was refused, in input order.
func (t *Table) Skipped() []error { return t.skipped }
