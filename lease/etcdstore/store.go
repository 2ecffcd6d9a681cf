package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/feltnet/felt/lease"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Store is lease.Store on etcd's v3 API, in flanneld's key layout and
// value shape. It also reads and writes the network config. It is safe for
// concurrent use.
type Store struct {
	cli       *clientv3.Client
	prefix    string // as given, "" replaced by lease.DefaultPrefix
	subnets   string // <prefix>/subnets, listed without a trailing slash as flanneld does
	log       *zap.Logger
	now       func() time.Time
	timeout   time.Duration
	malformed atomic.Uint64
}

var _ lease.Store = (*Store)(nil)

// Options tunes a Store; zero values take defaults.
type Options struct {
	Logger *zap.Logger      // default: no logging
	Now    func() time.Time // clock for Expiration; default time.Now
	// RequestTimeout bounds each unary request; default 10 s.
	RequestTimeout time.Duration
}

// New returns a Store under prefix ("" means lease.DefaultPrefix). The
// caller keeps ownership of cli and closes it after the store's last use.
func New(cli *clientv3.Client, prefix string, opts Options) *Store {
	if prefix == "" {
		prefix = lease.DefaultPrefix
	}
	s := &Store{cli: cli, prefix: prefix, subnets: path.Join(prefix, lease.SubnetsDir),
		log: opts.Logger, now: opts.Now, timeout: opts.RequestTimeout}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	return s
}

// Malformed counts lease keys and values skipped because they did not parse.
func (s *Store) Malformed() uint64 { return s.malformed.Load() }

// ConfigKey is <prefix>/config.
func (s *Store) ConfigKey() string { return path.Join(s.prefix, "config") }

// GetConfig reads and parses the network config. A missing key wraps
// ErrNoConfig with what to do about it.
func (s *Store) GetConfig(ctx context.Context) (*lease.Config, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := s.ConfigKey()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read network config %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w at %s: did you create your config using the etcd v3 API? "+
			"e.g. ETCDCTL_API=3 etcdctl put %s '{\"Network\":\"10.5.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}'",
			lease.ErrNoConfig, key, key)
	}
	cfg, err := lease.ParseConfig(resp.Kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("network config %s: %w: %w", key, lease.ErrBadConfig, err)
	}
	return cfg, nil
}

// PutConfig validates data with ParseConfig and stores it verbatim.
func (s *Store) PutConfig(ctx context.Context, data []byte) error {
	if _, err := lease.ParseConfig(data); err != nil {
		return fmt.Errorf("network config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.ConfigKey(), string(data)); err != nil {
		return fmt.Errorf("write network config %s: %w", s.ConfigKey(), err)
	}
	return nil
}

// List implements lease.Store.
func (s *Store) List(ctx context.Context, withExpiry bool) ([]lease.Lease, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.subnets, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list leases under %s: %w", s.subnets, err)
	}
	leases := make([]lease.Lease, 0, len(resp.Kvs))
	ids := make([]clientv3.LeaseID, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		l, ok := s.decode(kv.Key, kv.Value)
		if !ok {
			continue
		}
		leases = append(leases, l)
		ids = append(ids, clientv3.LeaseID(kv.Lease))
	}
	if withExpiry {
		exp, err := s.expirations(ctx, ids)
		if err != nil {
			return nil, 0, err
		}
		for i := range leases {
			leases[i].Expiration = exp[ids[i]]
		}
	}
	return leases, resp.Header.Revision, nil
}

// Get implements lease.Store: one key and, if it has an etcd lease, one TTL
// request, whatever the size of the cluster.
func (s *Store) Get(ctx context.Context, sn, sn6 netip.Prefix) (lease.Lease, bool, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := lease.SubnetKey(s.prefix, sn, sn6)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return lease.Lease{}, false, 0, fmt.Errorf("read lease %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return lease.Lease{}, false, resp.Header.Revision, nil
	}
	kv := resp.Kvs[0]
	l, ok := s.decode(kv.Key, kv.Value)
	if !ok {
		return lease.Lease{Subnet: sn, IPv6Subnet: sn6}, true, resp.Header.Revision, nil
	}
	id := clientv3.LeaseID(kv.Lease)
	exp, err := s.expirations(ctx, []clientv3.LeaseID{id})
	if err != nil {
		return lease.Lease{}, false, 0, err
	}
	l.Expiration = exp[id]
	return l, true, resp.Header.Revision, nil
}

// Create implements lease.Store as flanneld's createSubnet: Grant, then a Txn
// that puts only if the key has never been written since it last vanished
// (Version == 0); the grant is revoked if the Txn does not succeed.
func (s *Store) Create(ctx context.Context, l lease.Lease, ttl time.Duration) (lease.Lease, int64, error) {
	return s.write(ctx, l, ttl, true)
}

// Update implements lease.Store as flanneld's updateSubnet: Grant, then an
// unconditional Put. The previous etcd lease is left to expire keyless.
func (s *Store) Update(ctx context.Context, l lease.Lease, ttl time.Duration) (lease.Lease, int64, error) {
	return s.write(ctx, l, ttl, false)
}

func (s *Store) write(ctx context.Context, l lease.Lease, ttl time.Duration, create bool) (lease.Lease, int64, error) {
	secs := int64(ttl / time.Second)
	if secs < 1 {
		return l, 0, fmt.Errorf("lease ttl %s: must be at least 1s", ttl)
	}
	val, err := json.Marshal(l.Attrs)
	if err != nil {
		return l, 0, fmt.Errorf("encode lease attrs for %s: %w", l.Subnet, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := lease.SubnetKey(s.prefix, l.Subnet, l.IPv6Subnet)
	start := s.now()
	g, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return l, 0, fmt.Errorf("grant etcd lease for %s: %w", key, err)
	}
	var rev int64
	put := clientv3.OpPut(key, string(val), clientv3.WithLease(g.ID))
	if create {
		var tr *clientv3.TxnResponse
		tr, err = s.cli.Txn(ctx).If(s.createConds(key, l.Subnet)...).Then(put).Commit()
		if err == nil && !tr.Succeeded {
			err = fmt.Errorf("%s: %w", key, lease.ErrSubnetTaken)
		}
		if tr != nil {
			rev = tr.Header.Revision
		}
	} else {
		var pr clientv3.OpResponse
		pr, err = s.cli.Do(ctx, put)
		if err == nil {
			rev = pr.Put().Header.Revision
		}
	}
	if err != nil {
		// A write that timed out or was cancelled may still have landed:
		// revoking its grant would then delete the key it now holds (our
		// own lease, on a renewal cut short by SIGTERM). Leave that grant
		// to expire on its own.
		if errors.Is(err, lease.ErrSubnetTaken) || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			s.revoke(g.ID)
		}
		if errors.Is(err, lease.ErrSubnetTaken) {
			return l, 0, err
		}
		return l, 0, fmt.Errorf("write lease %s: %w", key, err)
	}
	l.Expiration = start.Add(time.Duration(g.TTL) * time.Second)
	return l, rev, nil
}

// createConds are the create Txn's guards: the key has never been written
// since it last vanished (flanneld's one condition), and no other key holds
// the same IPv4 subnet, alone ("10.5.1.0-24") or with any IPv6 subnet
// ("10.5.1.0-24&…"), so that a dual-stack key and an IPv4-only one, or two
// dual-stack keys with different IPv6 halves, never share an IPv4 subnet.
// An IPv6-only key (sn zero) has only the first.
func (s *Store) createConds(key string, sn netip.Prefix) []clientv3.Cmp {
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.Version(key), "=", 0)}
	if !sn.IsValid() {
		// IPv6-only: every key starts 0.0.0.0-0&, so the key itself is the
		// guard (the manager's checkIPv6Race covers other lengths).
		return conds
	}
	v4 := lease.SubnetKey(s.prefix, sn, netip.Prefix{})
	conds = append(conds, clientv3.Compare(clientv3.Version(v4+"&").WithPrefix(), "=", 0))
	if v4 != key {
		conds = append(conds, clientv3.Compare(clientv3.Version(v4), "=", 0))
	}
	return conds
}

// revoke frees a grant that holds no key; failure only delays its expiry.
func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, id); err != nil {
		s.log.Debug("revoke unused etcd lease", zap.Int64("id", int64(id)), zap.Error(err))
	}
}

// Delete implements lease.Store.
func (s *Store) Delete(ctx context.Context, l lease.Lease) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := lease.SubnetKey(s.prefix, l.Subnet, l.IPv6Subnet)
	if _, err := s.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete lease %s: %w", key, err)
	}
	return nil
}

// decode parses one lease key and value; it logs, counts and rejects
// malformed ones.
func (s *Store) decode(key, val []byte) (lease.Lease, bool) {
	sn, sn6, err := lease.ParseSubnetKey(string(key))
	if err != nil {
		s.malformed.Add(1)
		s.log.Warn("skipping malformed lease key", zap.ByteString("key", key), zap.Error(err))
		return lease.Lease{}, false
	}
	attrs, err := lease.ParseAttrs(val)
	if err != nil {
		s.malformed.Add(1)
		s.log.Warn("skipping malformed lease value", zap.ByteString("key", key), zap.ByteString("value", val), zap.Error(err))
		return lease.Lease{}, false
	}
	return lease.Lease{Subnet: sn, IPv6Subnet: sn6, Attrs: attrs}, true
}

// expirations asks etcd for the remaining TTL of each distinct lease ID,
// a few at a time. ID 0 (a reservation) maps to the zero time; an ID that
// has already expired maps to now.
func (s *Store) expirations(ctx context.Context, ids []clientv3.LeaseID) (map[clientv3.LeaseID]time.Time, error) {
	const parallel = 8
	now := s.now()
	out := make(map[clientv3.LeaseID]time.Time, len(ids))
	var uniq []clientv3.LeaseID
	for _, id := range ids {
		if _, seen := out[id]; !seen && id != clientv3.NoLease {
			out[id] = time.Time{}
			uniq = append(uniq, id)
		}
	}
	exp := make([]time.Time, len(uniq)) // each goroutine writes its own index
	errs := make([]error, len(uniq))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i, id := range uniq {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := s.cli.TimeToLive(ctx, id)
			switch {
			case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && r.TTL < 0):
				exp[i] = now
			case err != nil:
				errs[i] = fmt.Errorf("etcd lease %x ttl: %w", int64(id), err)
			default:
				exp[i] = now.Add(time.Duration(r.TTL) * time.Second)
			}
		})
	}
	wg.Wait()
	for i, id := range uniq {
		if errs[i] != nil {
			return out, errs[i] // the first is enough: they share a cause
		}
		out[id] = exp[i]
	}
	return out, nil
}
