//go:build linux

package encap

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestHoldsLimitExpiryAndBackoff(t *testing.T) {
	var h holds
	h.init()
	a := netip.MustParseAddrPort("10.0.0.1:8472")
	b := netip.MustParseAddrPort("10.0.0.2:8472")
	s := int64(time.Second)
	if l := h.limit(a, 0); l != maxGSOBytes {
		t.Fatalf("empty table: limit %d", l)
	}
	if !h.refuse(a, 1399, 10) {
		t.Error("first refusal toward a: want first=true (logged)")
	}
	if l := h.limit(a, 11); l != 1399 {
		t.Errorf("a held: limit %d, want 1399", l)
	}
	if l := h.limit(b, 11); l != maxGSOBytes {
		t.Errorf("b not held: limit %d", l)
	}
	if h.refuse(a, 999, 12) || h.limit(a, 13) != 999 {
		t.Errorf("smaller refusal while held: limit %d, want 999 and not a new series", h.limit(a, 13))
	}
	if l := h.limit(a, 10+s); l != maxGSOBytes {
		t.Errorf("after the first hold (1 s): limit %d, want none", l)
	}
	// Refused again on retry: the hold doubles, up to holdMax.
	now := 10 + s
	for i, want := range []int64{2, 4, 8, 16, 32, 64, 64, 64} {
		if h.refuse(a, 1399, now) {
			t.Errorf("retry %d: a new series, want the one going on", i)
		}
		if h.limit(a, now+want*s-1) != 1399 || h.limit(a, now+want*s) != maxGSOBytes {
			t.Fatalf("retry %d: want a hold of %d s", i, want)
		}
		now += want * s
	}
	// Quiet for longer than holdMax: the next refusal starts over at 1 s.
	now += int64(holdMax) + 1
	if !h.refuse(a, 1399, now) || h.limit(a, now+s) != maxGSOBytes || h.limit(a, now+s-1) != 1399 {
		t.Error("after a quiet spell the hold should start again at 1 s")
	}
}

// However many destinations are refused, the table keeps its fixed size and
// the latest refusal is always held.
func TestHoldsBounded(t *testing.T) {
	var h holds
	h.init()
	for i := range 100000 {
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 8472)
		h.refuse(dst, 1000, int64(i))
		if l := h.limit(dst, int64(i)); l != 1000 {
			t.Fatalf("destination %d: limit %d right after its refusal, want 1000", i, l)
		}
	}
	n := 0
	for _, set := range h.set {
		for _, e := range set {
			if e.dst.IsValid() {
				n++
			}
		}
	}
	if n > holdSets*holdWays {
		t.Fatalf("%d entries in a table of %d", n, holdSets*holdWays)
	}
	t.Logf("%d of %d slots used after 100000 destinations; table is %d bytes", n, holdSets*holdWays, unsafe.Sizeof(h))
}

func TestRefusalScope(t *testing.T) {
	for _, c := range []struct {
		e      unix.Errno
		seg    int
		family int
		global bool
		limit  int
	}{
		{unix.EMSGSIZE, 1400, unix.AF_INET, false, 1399},
		{unix.EINVAL, 1400, unix.AF_INET, false, 1399}, // older kernels' MTU refusal
		{unix.EINVAL, 40, unix.AF_INET, true, 0},       // 68-byte datagrams fit every IPv4 link
		{unix.EINVAL, 41, unix.AF_INET, false, 40},
		{unix.EMSGSIZE, 1232, unix.AF_INET6, true, 0}, // 1280 fits every IPv6 link
		{unix.EMSGSIZE, 1233, unix.AF_INET6, false, 1232},
		{unix.EIO, 1400, unix.AF_INET, false, 0},
		{unix.EOPNOTSUPP, 1400, unix.AF_INET, true, 0},
		{unix.ENOPROTOOPT, 1400, unix.AF_INET6, true, 0},
	} {
		g, l := refusalScope(c.e, c.seg, c.family)
		if g != c.global || l != c.limit {
			t.Errorf("refusalScope(%v, %d, family %d) = %v, %d; want %v, %d", c.e, c.seg, c.family, g, l, c.global, c.limit)
		}
	}
}

// BenchmarkHoldsLimit is the lookup WriteBatch makes per GSO run while any
// destination is held: a full table, a held and an unheld destination.
func BenchmarkHoldsLimit(b *testing.B) {
	var h holds
	h.init()
	for i := range 1000 {
		h.refuse(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 8472), 1000, 0)
	}
	dsts := []netip.AddrPort{
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 3, 231}), 8472), // the last refused: held
		netip.MustParseAddrPort("10.2.0.1:8472"),                          // never refused
	}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		n += h.limit(dsts[i&1], 1)
	}
	if n == 0 {
		b.Fatal("no limits")
	}
}
