package lease

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func testLease(sn string, pub string) Lease {
	return Lease{Subnet: netip.MustParsePrefix(sn), Attrs: NewUDPAttrs(netip.MustParseAddr(pub))}
}

// events renders events compactly for comparison: "added 10.5.1.0/24 10.0.0.1".
func events(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s %s %s", e.Type, e.Lease.Subnet, e.Lease.Attrs.PublicIP))
	}
	return out
}

func wantEvents(t *testing.T, what string, got []Event, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if g := events(got); !reflect.DeepEqual(g, want) {
		t.Errorf("%s: events %q, want %q", what, g, want)
	}
}

func TestCachePutDelete(t *testing.T) {
	c := NewCache(netip.MustParsePrefix("10.5.1.0/24"))
	a := testLease("10.5.2.0/24", "10.0.0.2")
	wantEvents(t, "new lease", c.Put(a), "added 10.5.2.0/24 10.0.0.2")
	wantEvents(t, "identical lease", c.Put(a))

	renewed := a
	renewed.Expiration = time.Unix(1e9, 0)
	wantEvents(t, "expiration-only change", c.Put(renewed))
	if got := c.Leases(); len(got) != 1 || !got[0].Expiration.Equal(renewed.Expiration) {
		t.Errorf("the renewed expiration was not kept: %+v", got)
	}

	moved := testLease("10.5.2.0/24", "10.0.0.9")
	wantEvents(t, "PublicIP change", c.Put(moved), "added 10.5.2.0/24 10.0.0.9")

	mac := NewVXLANAttrs(netip.MustParseAddr("10.0.0.9"), 1, []byte{2, 0, 0, 0, 0, 1})
	withMAC := Lease{Subnet: moved.Subnet, Attrs: mac}
	wantEvents(t, "backend data change", c.Put(withMAC), "added 10.5.2.0/24 10.0.0.9")
	withMAC.Attrs.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":"02:00:00:00:00:02"}`)
	wantEvents(t, "VtepMAC change", c.Put(withMAC), "added 10.5.2.0/24 10.0.0.9")

	wantEvents(t, "own subnet put", c.Put(testLease("10.5.1.0/24", "10.0.0.1")))
	wantEvents(t, "own subnet delete", c.Delete(netip.MustParsePrefix("10.5.1.0/24")))
	wantEvents(t, "unknown delete", c.Delete(netip.MustParsePrefix("10.5.3.0/24")))

	del := c.Delete(withMAC.Subnet)
	wantEvents(t, "delete", del, "removed 10.5.2.0/24 10.0.0.9")
	if len(del) == 1 && string(del[0].Lease.Attrs.BackendData) != string(withMAC.Attrs.BackendData) {
		t.Errorf("Removed carries %s, want the cached attrs %s", del[0].Lease.Attrs.BackendData, withMAC.Attrs.BackendData)
	}
	wantEvents(t, "second delete", c.Delete(withMAC.Subnet))
	if n := len(c.Leases()); n != 0 {
		t.Errorf("%d leases left", n)
	}
}

func TestCacheReset(t *testing.T) {
	c := NewCache(netip.MustParsePrefix("10.5.1.0/24"))
	wantEvents(t, "first snapshot", c.Reset([]Lease{
		testLease("10.5.3.0/24", "10.0.0.3"),
		testLease("10.5.1.0/24", "10.0.0.1"), // own: never reported
		testLease("10.5.2.0/24", "10.0.0.2"),
		testLease("10.5.4.0/24", "10.0.0.4"),
	}), "added 10.5.2.0/24 10.0.0.2", "added 10.5.3.0/24 10.0.0.3", "added 10.5.4.0/24 10.0.0.4")

	renewed := testLease("10.5.2.0/24", "10.0.0.2")
	renewed.Expiration = time.Unix(2e9, 0)
	wantEvents(t, "second snapshot", c.Reset([]Lease{
		testLease("10.5.5.0/24", "10.0.0.5"),  // new
		renewed,                               // expiration only: silent
		testLease("10.5.4.0/24", "10.0.0.44"), // changed
		testLease("10.5.5.0/24", "10.0.0.55"), // listed twice: the last wins
	}), "removed 10.5.3.0/24 10.0.0.3", "added 10.5.4.0/24 10.0.0.44", "added 10.5.5.0/24 10.0.0.55")

	got := c.Leases()
	var subnets []string
	for _, l := range got {
		subnets = append(subnets, l.Subnet.String())
	}
	if want := []string{"10.5.2.0/24", "10.5.4.0/24", "10.5.5.0/24"}; !reflect.DeepEqual(subnets, want) {
		t.Errorf("Leases() = %v, want %v", subnets, want)
	}
	if !got[0].Expiration.Equal(renewed.Expiration) {
		t.Errorf("Reset did not keep the new expiration")
	}
	wantEvents(t, "empty snapshot", c.Reset(nil),
		"removed 10.5.2.0/24 10.0.0.2", "removed 10.5.4.0/24 10.0.0.44", "removed 10.5.5.0/24 10.0.0.55")
}

func TestCacheSetOwn(t *testing.T) {
	c := NewCache(netip.Prefix{}) // no own subnet yet: everything is reported
	wantEvents(t, "put", c.Put(testLease("10.5.1.0/24", "10.0.0.1")), "added 10.5.1.0/24 10.0.0.1")
	wantEvents(t, "put", c.Put(testLease("10.5.2.0/24", "10.0.0.2")), "added 10.5.2.0/24 10.0.0.2")
	wantEvents(t, "SetOwn on a cached peer's subnet", c.SetOwn(netip.MustParsePrefix("10.5.2.0/24")),
		"removed 10.5.2.0/24 10.0.0.2")
	wantEvents(t, "SetOwn again", c.SetOwn(netip.MustParsePrefix("10.5.2.0/24")))
	wantEvents(t, "delete own after SetOwn", c.Delete(netip.MustParsePrefix("10.5.2.0/24")))
	wantEvents(t, "put own after SetOwn", c.Put(testLease("10.5.2.0/24", "10.0.0.7")))
	wantEvents(t, "reset keeps ignoring own", c.Reset([]Lease{testLease("10.5.2.0/24", "10.0.0.7")}),
		"removed 10.5.1.0/24 10.0.0.1")
}

func TestCacheIPv6OnlyKey(t *testing.T) {
	c := NewCache(netip.Prefix{})
	l := Lease{IPv6Subnet: netip.MustParsePrefix("fd00:0:0:1::/64"), Attrs: NewUDPAttrs(netip.MustParseAddr("10.0.0.1"))}
	if evs := c.Put(l); len(evs) != 1 {
		t.Fatalf("IPv6-only lease: %v", evs)
	}
	if evs := c.Delete(l.IPv6Subnet); len(evs) != 1 || evs[0].Type != Removed {
		t.Fatalf("IPv6-only delete: %v", evs)
	}
	if evs := c.Put(Lease{}); len(evs) != 0 {
		t.Errorf("a lease without subnets was reported: %v", evs)
	}
}
