package lease

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"go.uber.org/zap"
)

// Watcher follows every lease under <prefix>/subnets as flanneld's
// watchSubnets does: list at revision R, watch from R+1, resume from the
// last seen revision+1 after a broken stream (backing off 100 ms → 5 s), and
// list again after a compaction. Changes go through a Cache, so a re-list
// emits only the difference and Removed events carry the lease's last attrs.
type Watcher struct {
	store Store
	log   *zap.Logger

	mu    sync.Mutex
	own   netip.Prefix
	ownCh chan struct{} // poked by SetOwn: the follower lists again

	listed     chan struct{} // closed once the first listing was emitted
	listedOnce sync.Once
}

// NewWatcher returns a Watcher on store; log may be nil.
func NewWatcher(store Store, log *zap.Logger) *Watcher {
	if log == nil {
		log = zap.NewNop()
	}
	return &Watcher{store: store, log: log, ownCh: make(chan struct{}, 1), listed: make(chan struct{})}
}

// Listed is closed once WatchLeases has listed the leases for the first
// time and emit has returned for them (an empty listing emits nothing but
// closes it too): the caller's view then holds every lease that existed at
// start.
func (w *Watcher) Listed() <-chan struct{} { return w.listed }

// SetOwn changes the subnet whose events are suppressed, after Keep
// re-acquired another one. The running WatchLeases lists again: a node that
// took the old own subnet meanwhile was suppressed and must now appear, and
// a peer cached at the new own subnet is reported Removed.
func (w *Watcher) SetOwn(own netip.Prefix) {
	w.mu.Lock()
	changed := w.own != own
	w.own = own
	w.mu.Unlock()
	if changed {
		select {
		case w.ownCh <- struct{}{}:
		default:
		}
	}
}

func (w *Watcher) getOwn() netip.Prefix {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.own
}

// WatchLeases emits, from its own goroutine, the events that bring the
// caller's view from empty to the current set of leases and then keeps it
// current, never reporting own. emit owns each slice it is given. It returns
// ctx's error when ctx ends, and never before.
func (w *Watcher) WatchLeases(ctx context.Context, own netip.Prefix, emit func([]Event)) error {
	w.mu.Lock()
	if !w.own.IsValid() {
		w.own = own // a later SetOwn (the keeper's) wins over this start value
	}
	own = w.own
	w.mu.Unlock()
	f := follower{w: w, cache: NewCache(own), applied: own, emit: emit, bo: newBackoff()}
	for {
		if f.since == 0 {
			if err := f.list(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				d := f.bo.next()
				w.log.Warn("listing leases failed; retrying", zap.Duration("in", d), zap.Error(err))
				if sleep(ctx, d) != nil {
					return ctx.Err()
				}
				continue
			}
			w.listedOnce.Do(func() { close(w.listed) })
		}
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrCompacted) {
			w.log.Info("lease watch revision compacted; listing again", zap.Int64("since", f.since), zap.Error(err))
			f.since = 0
			continue
		}
		if errors.Is(err, errOwnChanged) {
			f.since = 0
			continue
		}
		d := f.bo.next()
		w.log.Warn("lease watch broke; resuming", zap.Int64("since", f.since), zap.Duration("in", d), zap.Error(err))
		if sleep(ctx, d) != nil {
			return ctx.Err()
		}
	}
}

// follower is the state of one WatchLeases call, owned by its goroutine.
type follower struct {
	w       *Watcher
	cache   *Cache
	applied netip.Prefix // own subnet as last given to the cache
	emit    func([]Event)
	bo      *backoff
	since   int64 // next revision to watch from; 0: list first
}

func (f *follower) syncOwn() {
	if o := f.w.getOwn(); o != f.applied {
		if evs := f.cache.SetOwn(o); len(evs) > 0 {
			f.emit(evs)
		}
		f.applied = o
	}
}

// errOwnChanged ends a follow so that WatchLeases lists again.
var errOwnChanged = errors.New("own subnet changed")

func (f *follower) list(ctx context.Context) error {
	// Peers need no expiry: skipping it spares etcd one TTL request per
	// lease on every list (flanneld pays them).
	leases, rev, err := f.w.store.List(ctx, false)
	if err != nil {
		return err
	}
	f.syncOwn()
	if evs := f.cache.Reset(leases); len(evs) > 0 {
		f.emit(evs)
	}
	f.since = rev + 1
	return nil
}

// follow watches from f.since until the stream ends, returning why.
func (f *follower) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the store's stream if we return early
	wch := f.w.store.Watch(ctx, netip.Prefix{}, f.since, false)
	for {
		var r WatchResponse
		var ok bool
		select {
		case r, ok = <-wch:
		case <-f.w.ownCh:
			return errOwnChanged
		}
		if !ok {
			return errors.New("lease watch stream closed")
		}
		if r.Err != nil {
			return r.Err
		}
		f.syncOwn()
		var evs []Event
		for _, ev := range r.Events {
			switch ev.Type {
			case Added:
				evs = append(evs, f.cache.Put(ev.Lease)...)
			case Removed:
				evs = append(evs, f.cache.Delete(leaseKey(ev.Lease))...)
			}
		}
		if len(evs) > 0 {
			f.emit(evs)
		}
		if r.Revision >= f.since {
			f.since = r.Revision + 1
		}
		f.bo.reset()
	}
}
