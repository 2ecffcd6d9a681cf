package lease

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Store is the lease storage the Manager and the Watcher use.
// lease/etcdstore implements it on etcd v3; revisions are etcd's.
type Store interface {
	// List returns every well-formed lease under <prefix>/subnets and the
	// revision they were read at. With withExpiry it also fills in each
	// lease's Expiration, which costs extra round trips; Acquire does
	// without.
	List(ctx context.Context, withExpiry bool) (leases []Lease, rev int64, err error)
	// Get reads the one lease at sn (and sn6, for a dual-stack key), with
	// its Expiration, and the revision it was read at. found is false when
	// no key is there; a key whose value does not parse is found with zero
	// Attrs.
	Get(ctx context.Context, sn, sn6 netip.Prefix) (l Lease, found bool, rev int64, err error)
	// Create stores l under its key with a fresh lease of ttl, only if no
	// key exists there; otherwise it returns ErrSubnetTaken. The result has
	// Expiration set; rev is the revision of the write.
	Create(ctx context.Context, l Lease, ttl time.Duration) (Lease, int64, error)
	// Update stores l under its key with a fresh lease of ttl whether or not
	// a key exists (flanneld's renew and reuse).
	Update(ctx context.Context, l Lease, ttl time.Duration) (Lease, int64, error)
	// Delete removes l's key; a missing key is not an error.
	Delete(ctx context.Context, l Lease) error
	// Watch streams changes from revision fromRev on. With a valid only, it
	// reports only the keys of the lease whose Key() that is (an IPv4
	// subnet, or the IPv6 subnet of an IPv6-only lease). withExpiry fills in Added
	// events' Expiration, one TTL round trip per etcd lease (the keeper
	// needs it; a peer watcher does not, and skipping it keeps a big
	// cluster's watch cheap). The channel is closed after an error (the
	// caller resumes from its last Revision+1) or when ctx ends.
	Watch(ctx context.Context, only netip.Prefix, fromRev int64, withExpiry bool) <-chan WatchResponse
}

// WatchResponse is one batch of changes. Added events carry the new value;
// Removed events carry only the subnets (etcd deletes have no value).
type WatchResponse struct {
	Events   []Event
	Revision int64 // the store revision this batch brings the caller to
	// Err ends the stream. errors.Is(Err, ErrCompacted) means fromRev is
	// gone: list again and watch from the list's revision.
	Err error
}

// Sentinel errors of the Store, for callers to classify with errors.Is.
var (
	// ErrSubnetTaken: Create lost to an existing key; pick another subnet.
	ErrSubnetTaken = errors.New("subnet already leased")
	// ErrCompacted: the watched revision was compacted away; re-list.
	ErrCompacted = errors.New("watch revision compacted")
	// ErrNoConfig: there is no network config; an operator must write one
	// (flanneld retries every second until there is).
	ErrNoConfig = errors.New("flannel config not found in etcd store")
	// ErrBadConfig: the config key is there but its value does not parse
	// or validate; fix it (felt config set), retrying will not help.
	ErrBadConfig = errors.New("invalid network config")
)
