package kroute

import (
	"errors"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// CheckEvery is flanneld's route check period (routeCheckRetries seconds).
const CheckEvery = 10 * time.Second

// Keeper holds the routes a node wants, one per destination, and keeps the
// kernel's main table holding them: Set and Remove program at once, Check
// (which its user calls every CheckEvery) puts back what went missing.
// Safe for concurrent use.
type Keeper struct {
	// Replace selects how Set installs a route: false is host-gw's Add,
	// true is vxlan DirectRouting's Replace.
	Replace bool
	// OnRestore, if set, is called for each route Check put back.
	OnRestore func(Route)

	mu   sync.Mutex
	want map[netip.Prefix]Route
}

// Set makes r the route to r.Dst: a different route this Keeper set for
// r.Dst is deleted first. r is kept even if installing it failed, so the
// next Check tries again (as flanneld keeps it in its route list).
func (k *Keeper) Set(r Route) error {
	if err := r.validate(); err != nil {
		return err
	}
	k.mu.Lock()
	if k.want == nil {
		k.want = map[netip.Prefix]Route{}
	}
	old, had := k.want[r.Dst]
	k.want[r.Dst] = r
	k.mu.Unlock()
	var errs []error
	if had && old != r {
		errs = append(errs, Del(old))
	}
	if k.Replace {
		errs = append(errs, Replace(r))
	} else {
		errs = append(errs, Add(r))
	}
	return errors.Join(errs...)
}

// Remove forgets the route to dst and deletes it from the kernel.
func (k *Keeper) Remove(dst netip.Prefix) error {
	k.mu.Lock()
	r, ok := k.want[dst]
	delete(k.want, dst)
	k.mu.Unlock()
	if !ok {
		return nil
	}
	return Del(r)
}

// Get returns the route kept for dst.
func (k *Keeper) Get(dst netip.Prefix) (Route, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.want[dst]
	return r, ok
}

// Routes returns the kept routes, by destination.
func (k *Keeper) Routes() []Route {
	k.mu.Lock()
	out := make([]Route, 0, len(k.want))
	for _, r := range k.want {
		out = append(out, r)
	}
	k.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Dst.Addr().Less(out[j].Dst.Addr()) })
	return out
}

// Check adds every kept route the main table lacks and returns those it
// put back; errors are per route, joined.
func (k *Keeper) Check() ([]Route, error) {
	missing, err := Missing(k.Routes())
	if err != nil {
		return nil, err
	}
	var restored []Route
	var errs []error
	for _, r := range missing {
		if _, still := k.Get(r.Dst); !still {
			continue // removed since the listing
		}
		var err error
		if k.Replace {
			err = Replace(r)
		} else {
			err = Add(r)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		restored = append(restored, r)
		if k.OnRestore != nil {
			k.OnRestore(r)
		}
	}
	return restored, errors.Join(errs...)
}

// Clear deletes every kept route from the kernel and forgets them all.
func (k *Keeper) Clear() error {
	var errs []error
	for _, r := range k.Routes() {
		errs = append(errs, k.Remove(r.Dst))
	}
	return errors.Join(errs...)
}
