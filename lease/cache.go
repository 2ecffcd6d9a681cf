package lease

import (
	"bytes"
	"net/netip"
	"slices"
)

// Cache is the pure half of the lease watch, in the shape of flanneld's
// LeaseWatcher: it holds the last known lease of every other node and turns
// snapshots and single changes into Added/Removed events. It does no I/O and
// is not safe for concurrent use; the watch loop owns it.
//
// Leases are keyed by their IPv4 subnet (by the IPv6 one for a lease
// without IPv4). The node's own subnet is never cached nor reported.
type Cache struct {
	own    netip.Prefix
	leases map[netip.Prefix]Lease
}

// NewCache returns an empty cache that ignores own (which may be zero).
func NewCache(own netip.Prefix) *Cache {
	return &Cache{own: own, leases: make(map[netip.Prefix]Lease)}
}

// SetOwn changes the node's own subnet, after a re-acquire. A cached lease
// for the new own subnet is forgotten with a Removed event, so the caller
// drops it as a peer. Leases at the old own subnet were never cached: only
// a fresh list (Reset) brings back a node that took that subnet meanwhile.
func (c *Cache) SetOwn(own netip.Prefix) []Event {
	c.own = own
	l, ok := c.leases[own]
	if !ok {
		return nil
	}
	delete(c.leases, own)
	return []Event{{Type: Removed, Lease: l}}
}

func leaseKey(l Lease) netip.Prefix { return l.Key() }

func (c *Cache) isOwn(k netip.Prefix) bool {
	return c.own.IsValid() && k == c.own
}

// Put records a lease seen in a PUT event: Added if it is new or its
// subnets or attributes changed; nothing if only Expiration differs (the
// cache still takes the new Expiration) or it is the own subnet.
func (c *Cache) Put(l Lease) []Event {
	k := leaseKey(l)
	if !k.IsValid() || c.isOwn(k) {
		return nil
	}
	old, ok := c.leases[k]
	c.leases[k] = l
	if ok && sameLease(old, l) {
		return nil
	}
	return []Event{{Type: Added, Lease: l}}
}

// Delete records a DELETE: Removed carrying the cached lease, so that the
// consumer can undo what it programmed; nothing for an unknown subnet.
func (c *Cache) Delete(sn netip.Prefix) []Event {
	old, ok := c.leases[sn]
	if !ok || c.isOwn(sn) {
		return nil
	}
	delete(c.leases, sn)
	return []Event{{Type: Removed, Lease: old}}
}

// Reset replaces the cache with a full listing (after a compaction or a
// reconnect) and returns the difference: Removed, with the cached lease,
// for every subnet gone, then Added for every new or changed lease, each
// group sorted by subnet. When a subnet is listed twice the last one wins.
func (c *Cache) Reset(snapshot []Lease) []Event {
	next := make(map[netip.Prefix]Lease, len(snapshot))
	for _, l := range snapshot {
		if k := leaseKey(l); k.IsValid() && !c.isOwn(k) {
			next[k] = l
		}
	}
	var removed, added []Event
	for k, old := range c.leases {
		if _, ok := next[k]; !ok {
			removed = append(removed, Event{Type: Removed, Lease: old})
		}
	}
	for k, l := range next {
		if old, ok := c.leases[k]; !ok || !sameLease(old, l) {
			added = append(added, Event{Type: Added, Lease: l})
		}
	}
	c.leases = next
	slices.SortFunc(removed, byEventSubnet)
	slices.SortFunc(added, byEventSubnet)
	return append(removed, added...)
}

// Leases returns the cached leases sorted by subnet. The slice is the
// caller's; the leases' BackendData still alias the cache's.
func (c *Cache) Leases() []Lease {
	out := make([]Lease, 0, len(c.leases))
	for _, l := range c.leases {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lease) int { return comparePrefix(leaseKey(a), leaseKey(b)) })
	return out
}

// sameLease reports whether two leases program the data path alike, i.e.
// everything but Expiration is equal.
func sameLease(a, b Lease) bool {
	return a.Subnet == b.Subnet && a.IPv6Subnet == b.IPv6Subnet &&
		a.Attrs.PublicIP == b.Attrs.PublicIP && a.Attrs.PublicIPv6 == b.Attrs.PublicIPv6 &&
		a.Attrs.BackendType == b.Attrs.BackendType &&
		bytes.Equal(a.Attrs.BackendData, b.Attrs.BackendData) &&
		bytes.Equal(a.Attrs.BackendV6Data, b.Attrs.BackendV6Data)
}

func byEventSubnet(a, b Event) int { return comparePrefix(leaseKey(a.Lease), leaseKey(b.Lease)) }

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
