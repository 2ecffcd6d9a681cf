package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The flanneld stand-ins in this package read leases the way flanneld does,
// from the etcd keys and JSON alone. They deliberately parse with their own
// code, not felt's lease package: a bug there must not hide itself here.

const subnetsPrefix = "/coreos.com/network/subnets/"

// flannelKeyRE is the contract's lease key pattern (docs/flannel-compat.md §2.1).
var flannelKeyRE = regexp.MustCompile(`(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$`)

// flannelLease is one lease as a flanneld node sees it.
type flannelLease struct {
	Subnet      netip.Prefix
	PublicIP    netip.Addr
	BackendType string
	VNI         uint32 // vxlan only
	VtepMAC     string // vxlan only
}

// parseFlannelLease parses a key and its LeaseAttrs JSON; Go's decoder
// matches keys case-insensitively, as flanneld's does.
func parseFlannelLease(key, val []byte) (flannelLease, error) {
	m := flannelKeyRE.FindSubmatch(key)
	if m == nil {
		return flannelLease{}, fmt.Errorf("key %q: not a subnet key", key)
	}
	bits, err := strconv.Atoi(string(m[2]))
	if err != nil || bits > 32 {
		return flannelLease{}, fmt.Errorf("key %q: bad prefix length", key)
	}
	addr, err := netip.ParseAddr(string(m[1]))
	if err != nil {
		return flannelLease{}, fmt.Errorf("key %q: %w", key, err)
	}
	var v struct {
		PublicIP    string
		PublicIPv6  *string
		BackendType string
		BackendData json.RawMessage
	}
	if err := json.Unmarshal(val, &v); err != nil {
		return flannelLease{}, fmt.Errorf("key %q: value %q: %w", key, val, err)
	}
	pub, err := netip.ParseAddr(v.PublicIP)
	if err != nil || !pub.Is4() {
		return flannelLease{}, fmt.Errorf("key %q: PublicIP %q: not IPv4", key, v.PublicIP)
	}
	l := flannelLease{Subnet: netip.PrefixFrom(addr, bits), PublicIP: pub, BackendType: v.BackendType}
	if v.BackendType == "vxlan" {
		var d struct {
			VNI     uint32
			VtepMAC string
		}
		if err := json.Unmarshal(v.BackendData, &d); err != nil {
			return flannelLease{}, fmt.Errorf("key %q: BackendData %s: %w", key, v.BackendData, err)
		}
		l.VNI, l.VtepMAC = d.VNI, d.VtepMAC
	}
	return l, nil
}

// leaseHandler is what a stand-in does when a lease appears, changes or
// goes away. A removal carries the lease as it was last seen.
type leaseHandler interface {
	added(l flannelLease) error
	removed(l flannelLease) error
}

// followLeases lists <prefix>/subnets/ and then watches from the next
// revision (flanneld's scheme), calling h for every lease but own, until the
// test ends or stop is called. Handler errors and malformed leases fail the
// test when it stops.
func followLeases(t *testing.T, cli *clientv3.Client, own netip.Prefix, h leaseHandler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cli: cli, own: own, h: h, seen: map[string]flannelLease{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			for _, err := range f.errs {
				t.Errorf("flanneld stand-in for %s: %v", own, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type follower struct {
	cli  *clientv3.Client
	own  netip.Prefix
	h    leaseHandler
	seen map[string]flannelLease // by key, for removals (etcd DELETEs carry no value)

	errs []error // read after run returns
}

func (f *follower) run(ctx context.Context) {
	var rev int64
	for ctx.Err() == nil {
		resp, err := f.cli.Get(ctx, subnetsPrefix, clientv3.WithPrefix())
		if err == nil {
			for _, kv := range resp.Kvs {
				f.put(kv.Key, kv.Value)
			}
			rev = resp.Header.Revision
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for ctx.Err() == nil {
		wc := f.cli.Watch(clientv3.WithRequireLeader(ctx), subnetsPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wc {
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					f.del(ev.Kv.Key)
				} else {
					f.put(ev.Kv.Key, ev.Kv.Value)
				}
			}
			if wr.Header.Revision > rev {
				rev = wr.Header.Revision
			}
		}
		time.Sleep(100 * time.Millisecond) // reconnect without spinning
	}
}

func (f *follower) put(key, val []byte) {
	l, err := parseFlannelLease(key, val)
	if err != nil {
		f.errs = append(f.errs, err)
		return
	}
	if l.Subnet == f.own {
		return
	}
	f.seen[string(key)] = l
	if err := f.h.added(l); err != nil {
		f.errs = append(f.errs, err)
	}
}

func (f *follower) del(key []byte) {
	l, ok := f.seen[string(key)]
	if !ok {
		return
	}
	delete(f.seen, string(key))
	if err := f.h.removed(l); err != nil {
		f.errs = append(f.errs, err)
	}
}

// putFlannelLease writes value at the lease key for sn and sn6 (the zero
// Prefix for none of that family) as flanneld's createSubnet does: a fresh
// 24 h etcd lease and a create-if-absent Txn.
func putFlannelLease(ctx context.Context, cli *clientv3.Client, sn, sn6 netip.Prefix, value string) error {
	if !sn.IsValid() {
		sn = netip.MustParsePrefix("0.0.0.0/0") // an IPv6-only lease's key starts 0.0.0.0-0
	}
	key := subnetsPrefix + sn.Addr().String() + "-" + strconv.Itoa(sn.Bits())
	if sn6.IsValid() {
		key += "&" + sn6.Addr().String() + "-" + strconv.Itoa(sn6.Bits())
	}
	g, err := cli.Grant(ctx, int64((24 * time.Hour).Seconds()))
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, value, clientv3.WithLease(g.ID))).Commit()
	if err != nil || !r.Succeeded {
		cli.Revoke(ctx, g.ID)
		return fmt.Errorf("create %s: %v (taken: %v)", key, err, err == nil)
	}
	return nil
}

// leaseSet is a handler's record of the leases it has programmed, so a test
// can wait for one.
type leaseSet struct {
	mu sync.Mutex
	m  map[netip.Prefix]flannelLease
}

func (s *leaseSet) set(l flannelLease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[netip.Prefix]flannelLease{}
	}
	s.m[l.Subnet] = l
}

func (s *leaseSet) drop(sn netip.Prefix) {
	s.mu.Lock()
	delete(s.m, sn)
	s.mu.Unlock()
}

func (s *leaseSet) get(sn netip.Prefix) (flannelLease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[sn]
	return l, ok
}

// wait waits until sn is in the set.
func (s *leaseSet) wait(t *testing.T, who string, sn netip.Prefix, within time.Duration) {
	t.Helper()
	s.waitFor(t, who, sn, within, func(flannelLease) bool { return true })
}

// waitFor waits until sn is in the set as ok wants it.
func (s *leaseSet) waitFor(t *testing.T, who string, sn netip.Prefix, within time.Duration, ok func(flannelLease) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l, in := s.get(sn)
		if in && ok(l) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has not programmed %s as wanted after %v (has %v: %+v)", who, sn, within, in, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
