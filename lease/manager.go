package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Manager takes and keeps this node's subnet lease, as flanneld's
// LocalManager does, with two fixes: a lost creation race is retried, and a
// lost lease is re-acquired instead of ending the process.
type Manager struct {
	store   Store
	log     *zap.Logger
	now     func() time.Time
	ttl     time.Duration
	margin  time.Duration
	retry   time.Duration
	races   int
	onRenew func(Lease)
	// republish carries the latest attrs given to Republish to Keep's
	// goroutine; a newer value replaces one not yet taken.
	republish chan Attrs

	mu  sync.Mutex // guards rnd, which is not safe for concurrent use
	rnd *rand.Rand
}

// ManagerOptions tunes a Manager; zero values take defaults.
type ManagerOptions struct {
	Logger *zap.Logger      // default: no logging
	Now    func() time.Time // default time.Now
	Rand   *rand.Rand       // subnet choice; default seeded from the runtime
	// TTL of a lease in etcd; default TTL (24 h, as flanneld).
	TTL time.Duration
	// RenewMargin: renew this long before expiry (flanneld's
	// --subnet-lease-renew-margin); default 60 min. It must lie within
	// [TTL/1440, TTL−TTL/1440], which for a 24 h TTL is 1..1439 minutes.
	RenewMargin time.Duration
	// RetryInterval between failed renewals and re-acquisitions; default 1 min.
	RetryInterval time.Duration
	// RaceRetries bounds how often Acquire retries a lost race; default 10.
	RaceRetries int
	// OnRenew, if set, is called from Keep's goroutine after each renewal
	// with the renewed lease (for metrics and status).
	OnRenew func(Lease)
}

// NewManager validates the options and returns a Manager on store.
func NewManager(store Store, o ManagerOptions) (*Manager, error) {
	m := &Manager{store: store, log: o.Logger, now: o.Now, rnd: o.Rand, ttl: o.TTL,
		margin: o.RenewMargin, retry: o.RetryInterval, races: o.RaceRetries, onRenew: o.OnRenew,
		republish: make(chan Attrs, 1)}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rnd == nil {
		m.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if m.ttl == 0 {
		m.ttl = TTL
	}
	if m.ttl < time.Second || m.ttl%time.Second != 0 {
		return nil, fmt.Errorf("lease TTL %s: must be a whole number of seconds, at least 1s", m.ttl)
	}
	if m.margin == 0 {
		m.margin = time.Hour
	}
	if lo, hi := m.ttl/1440, m.ttl-m.ttl/1440; m.margin < lo || m.margin > hi {
		return nil, fmt.Errorf("renew margin %s: must be within %s..%s for a lease TTL of %s (1..1439 minutes for 24h)",
			m.margin, lo, hi, m.ttl)
	}
	if m.retry == 0 {
		m.retry = time.Minute
	}
	if m.retry < 0 {
		return nil, fmt.Errorf("retry interval %s: must be positive", m.retry)
	}
	if m.races == 0 {
		m.races = 10
	}
	if m.races < 0 {
		return nil, fmt.Errorf("race retries %d: must be positive", m.races)
	}
	return m, nil
}

// Acquire takes a lease for attrs.PublicIP: the lease this public IP already
// holds if the config still admits it (renewed with attrs), else prev (the
// subnet from subnet.env; zero for none) if free and admitted, else a random
// free subnet. A race lost to another node is retried on a fresh list; a full
// pool wraps ErrOutOfSubnets. With EnableIPv6 the lease carries an IPv6
// subnet too, taken in the same create (AcquirePrev says how).
func (m *Manager) Acquire(ctx context.Context, cfg *Config, attrs Attrs, prev netip.Prefix) (Lease, error) {
	return m.AcquirePrev(ctx, cfg, attrs, Lease{Subnet: prev})
}

// AcquirePrev is Acquire with both families' previous subnets (prev.Subnet
// and prev.IPv6Subnet: subnet.env's FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET),
// which flanneld's LocalManager also takes: the IPv6 one is reused with the
// IPv4 one when the config admits it and no other lease holds it. Both
// subnets go into one key, so one create Txn takes both; see checkIPv6Race
// for the IPv6 half.
func (m *Manager) AcquirePrev(ctx context.Context, cfg *Config, attrs Attrs, prev Lease) (Lease, error) {
	if cfg == nil {
		return Lease{}, errors.New("acquire lease: no network config given")
	}
	if !attrs.PublicIP.Is4() {
		return Lease{}, fmt.Errorf("acquire lease: PublicIP %v: must be an IPv4 address (0.0.0.0 on an IPv6-only node)", attrs.PublicIP)
	}
	if !cfg.EnableIPv4 && !attrs.PublicIP.IsUnspecified() {
		return Lease{}, fmt.Errorf("acquire lease: PublicIP %v: must be 0.0.0.0 with EnableIPv4 false, as flanneld writes", attrs.PublicIP)
	}
	if cfg.EnableIPv6 && !attrs.PublicIPv6.IsValid() {
		return Lease{}, errors.New("acquire lease: PublicIPv6: required with EnableIPv6 (--public-ipv6, or an IPv6 address on the interface)")
	}
	// Subnets whose create lost: a key is there even if the list did not
	// show it (a value that does not parse is skipped by List), so they
	// are not tried again, prev included.
	var lost []Lease
	for attempt := 1; ; attempt++ {
		l, tried, err := m.tryAcquire(ctx, cfg, attrs, prev, lost)
		if !errors.Is(err, ErrSubnetTaken) {
			return l, err
		}
		lost = append(lost, tried)
		if attempt == m.races {
			return Lease{}, fmt.Errorf("acquire lease for %s: lost the race for a free subnet %d times in a row "+
				"(many nodes starting at once?); try again: %w", publicOf(cfg, attrs), attempt, err)
		}
		m.log.Debug("lost a subnet race; retrying", zap.Int("attempt", attempt), zap.Error(err))
		// Racing nodes list the same free set; a short random pause lets
		// the winners' writes land before the next list.
		if err := sleep(ctx, time.Duration(m.intN(20*attempt)+1)*time.Millisecond); err != nil {
			return Lease{}, err
		}
	}
}

// tryAcquire makes one attempt; it returns the subnets it tried to create,
// for AcquirePrev to avoid after a lost race.
func (m *Manager) tryAcquire(ctx context.Context, cfg *Config, attrs Attrs, prevLease Lease, lost []Lease) (Lease, Lease, error) {
	prev := prevLease.Subnet
	leases, _, err := m.store.List(ctx, false)
	if err != nil {
		return Lease{}, Lease{}, fmt.Errorf("acquire lease: %w", err)
	}
	taken := make([]netip.Prefix, 0, len(leases)+len(lost))
	taken6 := make([]netip.Prefix, 0)
	for _, l := range lost {
		if l.Subnet.IsValid() {
			taken = append(taken, l.Subnet)
		}
		if l.IPv6Subnet.IsValid() {
			taken6 = append(taken6, l.IPv6Subnet)
		}
	}
	for _, l := range leases {
		if !sameNode(cfg, l.Attrs, attrs) {
			if l.Subnet.IsValid() {
				taken = append(taken, l.Subnet)
			}
			if l.IPv6Subnet.IsValid() {
				taken6 = append(taken6, l.IPv6Subnet)
			}
			continue
		}
		if compatible(cfg, l) {
			l.Attrs = attrs
			got, _, err := m.store.Update(ctx, l, m.ttl)
			if err != nil {
				return Lease{}, Lease{}, fmt.Errorf("reuse lease %s of %s: %w", l.Key(), publicOf(cfg, attrs), err)
			}
			m.log.Info("reusing the lease of this public IP", zap.Stringer("subnet", l.Subnet),
				zap.Stringer("ipv6_subnet", l.IPv6Subnet), zap.Stringer("public_ip", publicOf(cfg, attrs)))
			return got, l, nil
		}
		m.log.Info("deleting this public IP's lease: the config no longer admits it",
			zap.Stringer("subnet", l.Subnet), zap.Stringer("ipv6_subnet", l.IPv6Subnet),
			zap.Stringer("network", cfg.Network), zap.Int("subnet_len", cfg.SubnetLen))
		if err := m.store.Delete(ctx, l); err != nil {
			return Lease{}, Lease{}, fmt.Errorf("delete incompatible lease %s: %w", l.Key(), err)
		}
	}
	want := Lease{Attrs: attrs}
	if !cfg.EnableIPv4 {
		// IPv6-only: no IPv4 half; the previous IPv6 subnet is the one to keep.
		if p6 := prevLease.IPv6Subnet; cfg.ContainsIPv6(p6) && !heldOverlaps(p6, taken6) {
			want.IPv6Subnet = p6
		}
	} else if prev.IsValid() && cfg.Contains(prev) && !heldOverlaps(prev, taken) {
		want.Subnet = prev
		if p6 := prevLease.IPv6Subnet; cfg.ContainsIPv6(p6) && !heldOverlaps(p6, taken6) {
			want.IPv6Subnet = p6
		}
	} else {
		m.mu.Lock()
		want.Subnet, err = Allocate(cfg, taken, m.rnd)
		m.mu.Unlock()
		if err != nil {
			return Lease{}, Lease{}, fmt.Errorf("acquire lease for %s: %w", publicOf(cfg, attrs), err)
		}
	}
	if cfg.EnableIPv6 && !want.IPv6Subnet.IsValid() {
		m.mu.Lock()
		want.IPv6Subnet, err = AllocateIPv6(cfg, taken6, m.rnd)
		m.mu.Unlock()
		if err != nil {
			return Lease{}, Lease{}, fmt.Errorf("acquire IPv6 lease for %s: %w", publicOf(cfg, attrs), err)
		}
	}
	l, _, err := m.store.Create(ctx, want, m.ttl)
	if err != nil {
		return Lease{}, want, err
	}
	if err := m.checkIPv6Race(ctx, l); err != nil {
		return Lease{}, want, err
	}
	m.log.Info("acquired lease", zap.Stringer("subnet", l.Subnet), zap.Stringer("ipv6_subnet", l.IPv6Subnet),
		zap.Bool("previous", l.Subnet == prev && (cfg.EnableIPv4 || l.IPv6Subnet == prevLease.IPv6Subnet)))
	return l, want, nil
}

// sameNode reports whether a stored lease value is this node's: the same
// IPv4 PublicIP, as flanneld's findLeaseByIP matches. In an IPv6-only
// cluster every PublicIP is 0.0.0.0 (flanneld would take any node's lease
// for its own there); felt matches PublicIPv6 instead.
func sameNode(cfg *Config, stored, mine Attrs) bool {
	if !cfg.EnableIPv4 {
		return stored.PublicIPv6.IsValid() && stored.PublicIPv6 == mine.PublicIPv6
	}
	return stored.PublicIP == mine.PublicIP
}

// publicOf is the address that names this node in messages: PublicIPv6 on
// an IPv6-only node, else PublicIP.
func publicOf(cfg *Config, a Attrs) netip.Addr {
	if !cfg.EnableIPv4 {
		return a.PublicIPv6
	}
	return a.PublicIP
}

// checkIPv6Race is the IPv6 half of taking both subnets at once. The create
// Txn makes the key, and so the IPv4 subnet, exclusive; an IPv6 subnet that
// another node picked at the same moment under another IPv4 subnet is in a
// different key, so a fresh list must show no other holder of l.IPv6Subnet.
// If one does, l is deleted and AcquirePrev retries as after a lost race
// (flanneld does not check this; two felt nodes may both retry, each then
// picking at random again).
func (m *Manager) checkIPv6Race(ctx context.Context, l Lease) error {
	if !l.IPv6Subnet.IsValid() {
		return nil
	}
	leases, _, err := m.store.List(ctx, false)
	if err != nil {
		return nil // the lease is held; a failed list is no evidence of a race
	}
	for _, o := range leases {
		if o.Subnet == l.Subnet && o.IPv6Subnet == l.IPv6Subnet {
			continue
		}
		if o.IPv6Subnet.IsValid() && o.IPv6Subnet.Overlaps(l.IPv6Subnet) {
			if err := m.store.Delete(ctx, l); err != nil {
				return fmt.Errorf("give up lease %s: its IPv6 subnet %s is also leased to %s: %w",
					l.Subnet, l.IPv6Subnet, o.Attrs.PublicIP, err)
			}
			return fmt.Errorf("IPv6 subnet %s also leased under %s: %w", l.IPv6Subnet, o.Subnet, ErrSubnetTaken)
		}
	}
	return nil
}

// compatible: the config still hands out this lease's subnet(s), as
// flanneld's isSubnetConfigCompat and isIPv6SubnetConfigCompat: with IPv6
// off, a key that carries an IPv6 subnet is not this config's.
func compatible(cfg *Config, l Lease) bool {
	if !cfg.EnableIPv4 {
		return !l.Subnet.IsValid() && cfg.ContainsIPv6(l.IPv6Subnet)
	}
	if !cfg.Contains(l.Subnet) {
		return false
	}
	if !cfg.EnableIPv6 {
		return !l.IPv6Subnet.IsValid()
	}
	return cfg.ContainsIPv6(l.IPv6Subnet)
}

func heldOverlaps(p netip.Prefix, set []netip.Prefix) bool {
	for _, q := range set {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

func (m *Manager) intN(n int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rnd.IntN(n)
}

// Republish gives a running (or later) Keep new attrs for the kept lease,
// with the same PublicIP (a new VtepMAC, say): Keep writes them at once, as a
// renewal (OnRenew is called), and uses them for every later renewal and
// re-acquisition. Only the latest attrs are kept when calls come faster than
// Keep takes them. Safe for concurrent use.
func (m *Manager) Republish(attrs Attrs) {
	for {
		select {
		case m.republish <- attrs:
			return
		default:
		}
		select {
		case <-m.republish: // superseded
		default:
		}
	}
}

// Keep holds lease l until ctx ends, and only then returns (ctx's error).
// It renews l with attrs RenewMargin before it expires (retrying failed
// renewals every RetryInterval) and watches l's key. If the key is deleted,
// expires or is taken over by another public IP, Keep acquires a lease again
// (the same subnet when it is free) and calls onChange with it, from Keep's
// goroutine. Republish replaces attrs.
func (m *Manager) Keep(ctx context.Context, cfg *Config, l Lease, attrs Attrs, onChange func(Lease)) error {
	cur, lost := l, false
	backoff := newBackoff()
	for {
		if lost {
			select {
			case attrs = <-m.republish:
			default:
			}
			nl, err := m.AcquirePrev(ctx, cfg, attrs, cur)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				m.log.Error("re-acquiring the lost lease failed; retrying", zap.Duration("in", m.retry), zap.Error(err))
				if sleep(ctx, m.retry) != nil {
					return ctx.Err()
				}
				continue
			}
			m.log.Warn("re-acquired a lease after losing one", zap.Stringer("old", cur.Key()), zap.Stringer("new", nl.Key()))
			cur, lost = nl, false
			onChange(nl)
		}
		var err error
		lost, err = m.hold(ctx, cfg, &cur, &attrs, backoff)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if lost {
			m.log.Warn("lease has been revoked or taken; re-acquiring", zap.Stringer("subnet", cur.Key()))
			continue
		}
		if err != nil {
			d := backoff.next()
			m.log.Warn("watching own lease failed; retrying", zap.Duration("in", d), zap.Error(err))
			if sleep(ctx, d) != nil {
				return ctx.Err()
			}
		}
	}
}

// hold checks that cur is still ours, then renews it and watches its key
// until it is lost (true), the watch must be re-established (false, nil:
// compaction) or fails (false, err). Attrs from Republish replace *attrs and
// are written at once.
func (m *Manager) hold(ctx context.Context, cfg *Config, cur *Lease, attrs *Attrs, backoff *backoff) (bool, error) {
	// Only the own key: a list of every lease (with a TTL request each)
	// would make each renewal cost grow with the cluster.
	l, found, rev, err := m.store.Get(ctx, cur.Subnet, cur.IPv6Subnet)
	if err != nil {
		return false, err
	}
	if !found || !sameNode(cfg, l.Attrs, *attrs) {
		return true, nil
	}
	// A key without an etcd lease (a reservation) has a zero Expiration;
	// renewing at once gives it one, as flanneld does. Otherwise keep our
	// own, more precise figure if it is later.
	if l.Expiration.IsZero() || l.Expiration.After(cur.Expiration) {
		cur.Expiration = l.Expiration
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := m.store.Watch(wctx, cur.Key(), rev+1, true)
	timer := time.NewTimer(m.untilRenew(*cur))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case a := <-m.republish:
			*attrs = a
			timer.Reset(0)
		case <-timer.C:
			nl, _, err := m.store.Update(ctx, Lease{Subnet: cur.Subnet, IPv6Subnet: cur.IPv6Subnet, Attrs: *attrs}, m.ttl)
			if err != nil {
				m.log.Warn("renewing the lease failed; retrying", zap.Stringer("subnet", cur.Key()),
					zap.Duration("in", m.retry), zap.Error(err))
				timer.Reset(m.retry)
				continue
			}
			*cur = nl
			if m.onRenew != nil {
				m.onRenew(nl)
			}
			m.log.Info("renewed lease", zap.Stringer("subnet", cur.Key()), zap.Time("expires", cur.Expiration))
			timer.Reset(m.untilRenew(*cur))
		case r, ok := <-wch:
			if !ok {
				return false, errors.New("own lease watch closed")
			}
			if errors.Is(r.Err, ErrCompacted) {
				return false, nil // re-list: the key may have gone meanwhile
			}
			if r.Err != nil {
				return false, r.Err
			}
			backoff.reset()
			for _, ev := range r.Events {
				if ev.Type == Removed || ev.Lease.Subnet != cur.Subnet || ev.Lease.IPv6Subnet != cur.IPv6Subnet ||
					!sameNode(cfg, ev.Lease.Attrs, *attrs) {
					return true, nil
				}
				// etcd reports whole seconds left, so the event of our own
				// renewal reads earlier than what we computed; going by it
				// would renew again at once when the margin is near the TTL.
				if ev.Lease.Expiration.After(cur.Expiration) {
					cur.Expiration = ev.Lease.Expiration
					timer.Reset(m.untilRenew(*cur))
				}
			}
		}
	}
}

// untilRenew is how long to wait before renewing l; zero when overdue or
// when l has no expiry.
func (m *Manager) untilRenew(l Lease) time.Duration {
	if l.Expiration.IsZero() {
		return 0
	}
	return max(l.Expiration.Sub(m.now())-m.margin, 0)
}
