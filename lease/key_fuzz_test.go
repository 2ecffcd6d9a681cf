package lease

import (
	"testing"
)

// Invariants: no panic; a parsed key re-formats (under any prefix) to a key
// that parses to the same subnets.
func FuzzParseSubnetKey(f *testing.F) {
	for _, s := range []string{
		"/coreos.com/network/subnets/10.5.52.0-24",
		"/coreos.com/network/subnets/10.12.13.0-24&fd00:12:13::-56",
		"/x/subnets/0.0.0.0-0&::-0",
		"10.5y52z0-24",
		"/x/subnets/10.5.52.0-024",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		sn, sn6, err := ParseSubnetKey(key)
		if err != nil {
			return
		}
		// An IPv6-only key (0.0.0.0-0&…) has a zero IPv4 half.
		v4ok := (sn.IsValid() && sn.Addr().Is4() && sn == sn.Masked()) || (!sn.IsValid() && sn6.IsValid())
		if !v4ok || (sn6.IsValid() && sn6 != sn6.Masked()) {
			t.Fatalf("ParseSubnetKey(%q) = %s, %s: not masked IPv4 (+IPv6) nor IPv6-only", key, sn, sn6)
		}
		again := SubnetKey(DefaultPrefix, sn, sn6)
		sn2, sn62, err := ParseSubnetKey(again)
		if err != nil || sn2 != sn || sn62 != sn6 {
			t.Fatalf("ParseSubnetKey(%q) = %s, %s; its key %q parses to %s, %s, %v", key, sn, sn6, again, sn2, sn62, err)
		}
	})
}
