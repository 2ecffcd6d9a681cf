package lease

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func mustConfig(t testing.TB, js string) *Config {
	t.Helper()
	c, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func overlapsAny(sn netip.Prefix, taken []netip.Prefix) bool {
	for _, p := range taken {
		if p.Overlaps(sn) {
			return true
		}
	}
	return false
}

// TestAllocateFillsPool allocates until the pool is exhausted: every subnet
// is distinct, inside [Min, Max], of SubnetLen, and then the error names
// the pool and the number held.
func TestAllocateFillsPool(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.209.0"}`) // 200 subnets
	rnd := rand.New(rand.NewPCG(1, 2))
	var taken []netip.Prefix
	for i := range 200 {
		sn, err := Allocate(cfg, taken, rnd)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if !cfg.Contains(sn) || overlapsAny(sn, taken) {
			t.Fatalf("allocation %d: %s outside the pool or already taken", i, sn)
		}
		taken = append(taken, sn)
	}
	_, err := Allocate(cfg, taken, rnd)
	if !errors.Is(err, ErrOutOfSubnets) {
		t.Fatalf("Allocate on a full pool: %v, want ErrOutOfSubnets", err)
	}
	want := "out of subnets: pool 10.5.0.0/16 (10.5.10.0-10.5.209.0, /24) has no free subnet; 200 prefixes held"
	if err.Error() != want {
		t.Errorf("error %q\nwant     %q", err, want)
	}
}

func TestAllocateOverlapOtherLengths(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.5.0.0/16","SubnetMax":"10.5.8.0"}`) // 10.5.1.0 .. 10.5.8.0
	p := netip.MustParsePrefix
	taken := []netip.Prefix{
		p("10.5.0.0/22"),   // a wider lease: covers 10.5.1-3
		p("10.5.5.128/25"), // a narrower one inside 10.5.5.0/24
		p("10.5.7.7/32"),   // a single address, unmasked on purpose
		p("fd00::/8"),      // other family: ignored
		p("10.5.6.0/24"),
	}
	free := map[netip.Prefix]bool{p("10.5.4.0/24"): true, p("10.5.8.0/24"): true}
	seen := map[netip.Prefix]bool{}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		sn, err := Allocate(cfg, taken, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if !free[sn] {
			t.Fatalf("Allocate = %s, which overlaps a taken prefix; free are %v", sn, free)
		}
		seen[sn] = true
	}
	if len(seen) != len(free) {
		t.Errorf("200 draws chose only %v of %v", seen, free)
	}
}

// TestAllocateFirstHundred checks flanneld's rule: the choice is among the
// first 100 free subnets from SubnetMin, uniformly.
func TestAllocateFirstHundred(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.0.0.0/8"}`)              // 65535 subnets
	taken := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/20")} // holds 10.0.1-15
	rnd := rand.New(rand.NewPCG(5, 6))
	counts := map[netip.Prefix]int{}
	for range 5000 {
		sn, err := Allocate(cfg, taken, rnd)
		if err != nil {
			t.Fatal(err)
		}
		counts[sn]++
	}
	lo, hi := netip.MustParseAddr("10.0.16.0"), netip.MustParseAddr("10.0.115.0")
	for sn := range counts {
		if sn.Addr().Less(lo) || hi.Less(sn.Addr()) {
			t.Errorf("Allocate = %s, outside the first 100 free (%s..%s)", sn, lo, hi)
		}
	}
	if len(counts) < 95 {
		t.Errorf("5000 draws hit only %d of the 100 candidates", len(counts))
	}
}

func TestAllocateIPv6(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48"}`)
	taken := []netip.Prefix{netip.MustParsePrefix("10.5.1.0/24"), netip.MustParsePrefix("fd00:0:0:1::/63")}
	rnd := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		sn, err := AllocateIPv6(cfg, taken, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.ContainsIPv6(sn) || overlapsAny(sn, taken) {
			t.Fatalf("AllocateIPv6 = %s", sn)
		}
	}
	// The walk reaches the very end of the address space without wrapping.
	top := mustConfig(t, `{"Network":"255.255.255.0/24","EnableIPv6":true,"IPv6Network":"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"}`)
	sn, err := AllocateIPv6(top, []netip.Prefix{netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff40/122"),
		netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80/122")}, rnd)
	if err != nil || sn != netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffc0/122") {
		t.Errorf("AllocateIPv6 at the top = %s, %v", sn, err)
	}
	sn, err = Allocate(top, []netip.Prefix{netip.MustParsePrefix("255.255.255.64/27"), netip.MustParsePrefix("255.255.255.128/26")}, rnd)
	if err != nil || sn != netip.MustParsePrefix("255.255.255.192/26") {
		t.Errorf("Allocate at the top = %s, %v", sn, err)
	}
	_, err = Allocate(top, []netip.Prefix{netip.MustParsePrefix("255.255.255.0/24")}, rnd)
	if !errors.Is(err, ErrOutOfSubnets) {
		t.Errorf("Allocate on a full top pool: %v", err)
	}
	if _, err := AllocateIPv6(mustConfig(t, `{"Network":"10.5.0.0/16"}`), nil, rnd); err == nil || !strings.Contains(err.Error(), "EnableIPv6") {
		t.Errorf("AllocateIPv6 without IPv6: %v", err)
	}
}

func BenchmarkAllocateCrowded(b *testing.B) {
	cfg := mustConfig(b, `{"Network":"10.0.0.0/8"}`)
	var taken []netip.Prefix
	for i := 1; i < 60000; i++ {
		taken = append(taken, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Allocate(cfg, taken, rnd); err != nil {
			b.Fatal(err)
		}
	}
}
