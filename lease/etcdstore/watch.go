package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/feltnet/felt/lease"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Watch implements lease.Store. It runs one goroutine that ends with ctx or the
// first error, closing the channel.
func (s *Store) Watch(ctx context.Context, only netip.Prefix, fromRev int64, withExpiry bool) <-chan lease.WatchResponse {
	key := s.subnets
	if only.Addr().Is4() {
		key = lease.SubnetKey(s.prefix, only, netip.Prefix{})
	} else if only.IsValid() {
		key = lease.SubnetKey(s.prefix, netip.Prefix{}, only) // 0.0.0.0-0&<IPv6>-<len>
	}
	out := make(chan lease.WatchResponse)
	wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithPrefix(), clientv3.WithRev(fromRev))
	go func() {
		defer close(out)
		for wr := range wch {
			r := s.translate(ctx, wr, only, withExpiry)
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
			if r.Err != nil {
				return
			}
		}
	}()
	return out
}

func (s *Store) translate(ctx context.Context, wr clientv3.WatchResponse, only netip.Prefix, withExpiry bool) lease.WatchResponse {
	// Resume after the last event this response carries, not after the
	// header's revision: while catching up etcd sends events in several
	// responses, each with the current header revision, and a stream broken
	// between them would otherwise skip the rest.
	r := lease.WatchResponse{Revision: wr.Header.Revision}
	if n := len(wr.Events); n > 0 {
		r.Revision = wr.Events[n-1].Kv.ModRevision
	}
	if wr.CompactRevision != 0 {
		r.Err = fmt.Errorf("%w: revision %d", lease.ErrCompacted, wr.CompactRevision)
		return r
	}
	if err := wr.Err(); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			err = fmt.Errorf("%w: %w", lease.ErrCompacted, err)
		}
		r.Err = fmt.Errorf("watch %s: %w", s.subnets, err)
		return r
	}
	var ids []clientv3.LeaseID
	for _, ev := range wr.Events {
		l, ok := s.eventLease(ev)
		if !ok || (only.IsValid() && l.Key() != only) {
			continue
		}
		typ := lease.Added
		if ev.Type == mvccpb.DELETE {
			typ = lease.Removed
		}
		r.Events = append(r.Events, lease.Event{Type: typ, Lease: l})
		if typ == lease.Added && withExpiry {
			ids = append(ids, clientv3.LeaseID(ev.Kv.Lease))
		}
	}
	if len(ids) > 0 {
		// Bounded like every unary request: a member that hangs without
		// closing its connections must not stall the watch for good.
		ectx, cancel := context.WithTimeout(ctx, s.timeout)
		exp, err := s.expirations(ectx, ids)
		cancel()
		if err != nil {
			// The value is known; only its expiry is not. Leave it zero
			// rather than lose the event.
			s.log.Warn("lease expiry unknown", zap.Error(err))
		}
		i := 0
		for j := range r.Events {
			if r.Events[j].Type == lease.Added {
				r.Events[j].Lease.Expiration = exp[ids[i]]
				i++
			}
		}
	}
	return r
}

func (s *Store) eventLease(ev *clientv3.Event) (lease.Lease, bool) {
	if ev.Type == mvccpb.DELETE {
		sn, sn6, err := lease.ParseSubnetKey(string(ev.Kv.Key))
		if err != nil {
			s.malformed.Add(1)
			s.log.Warn("skipping malformed lease key", zap.ByteString("key", ev.Kv.Key), zap.Error(err))
			return lease.Lease{}, false
		}
		return lease.Lease{Subnet: sn, IPv6Subnet: sn6}, true
	}
	return s.decode(ev.Kv.Key, ev.Kv.Value)
}
