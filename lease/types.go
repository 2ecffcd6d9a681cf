package lease

import (
	"encoding/json"
	"net/netip"
	"time"
)

// DefaultPrefix is flanneld's default --etcd-prefix.
const DefaultPrefix = "/coreos.com/network"

// TTL is the lifetime of a subnet lease in etcd, as flanneld's subnetTTL.
const TTL = 24 * time.Hour

// Lease is one subnet lease as stored under <prefix>/subnets/.
type Lease struct {
	Subnet     netip.Prefix // IPv4 subnet, masked; zero for an IPv6-only lease (EnableIPv4 false)
	IPv6Subnet netip.Prefix // zero (!IsValid) unless the key is dual-stack or IPv6-only
	Attrs      Attrs
	// Expiration is when the etcd lease runs out; zero when unknown. A key
	// without an etcd lease (a reservation) never expires: zero as well.
	Expiration time.Time
}

// Key is the subnet that names l among the leases of one cluster: its IPv4
// subnet, or its IPv6 subnet when it has none (an IPv6-only cluster, where
// every key's IPv4 half is 0.0.0.0-0).
func (l Lease) Key() netip.Prefix {
	if l.Subnet.IsValid() {
		return l.Subnet
	}
	return l.IPv6Subnet
}

// Attrs is the lease value: flanneld's LeaseAttrs JSON, field for field.
//
//	{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}
type Attrs struct {
	PublicIP      netip.Addr      // IPv4, always present; 0.0.0.0 on an IPv6-only node, as flanneld writes
	PublicIPv6    netip.Addr      // !IsValid() is written as JSON null
	BackendType   string          // omitted when empty (flanneld's udp backend writes none)
	BackendData   json.RawMessage // omitted when empty
	BackendV6Data json.RawMessage // omitted when empty
}

// VXLANData is the BackendData of a vxlan lease.
type VXLANData struct {
	VNI     uint32 `json:"VNI"`
	VtepMAC string `json:"VtepMAC"` // lower-case colon form, net.HardwareAddr.String()
}

// EventType says whether a lease appeared (or changed) or went away.
type EventType int

const (
	Added EventType = iota + 1
	Removed
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return "unknown"
}

// Event is one change to the set of leases. A Removed event carries the
// attributes the lease had while it lived (taken from the watcher's cache),
// so a consumer can undo what it programmed for it.
type Event struct {
	Type  EventType
	Lease Lease
}
