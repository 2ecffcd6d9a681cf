package lease

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSubnetKey(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		prefix  string
		sn, sn6 netip.Prefix
		want    string
	}{
		{DefaultPrefix, p("10.5.52.0/24"), netip.Prefix{}, "/coreos.com/network/subnets/10.5.52.0-24"},
		{"/coreos.com/network", p("10.12.13.0/24"), p("fd00:12:13::/56"), "/coreos.com/network/subnets/10.12.13.0-24&fd00:12:13::-56"},
		{"/felt/", p("10.0.0.0/30"), netip.Prefix{}, "/felt/subnets/10.0.0.0-30"},
		{"/a//b", p("10.0.0.0/8"), p("2001:db8::/64"), "/a/b/subnets/10.0.0.0-8&2001:db8::-64"},
	}
	for _, tt := range tests {
		if got := SubnetKey(tt.prefix, tt.sn, tt.sn6); got != tt.want {
			t.Errorf("SubnetKey(%q, %s, %s) = %q, want %q", tt.prefix, tt.sn, tt.sn6, got, tt.want)
		}
		sn, sn6, err := ParseSubnetKey(tt.want)
		if err != nil || sn != tt.sn || sn6 != tt.sn6 {
			t.Errorf("ParseSubnetKey(%q) = %s, %s, %v; want %s, %s", tt.want, sn, sn6, err, tt.sn, tt.sn6)
		}
	}
}

func TestParseSubnetKey(t *testing.T) {
	p := netip.MustParsePrefix
	ok := []struct {
		key     string
		sn, sn6 netip.Prefix
	}{
		{"10.5.52.0-24", p("10.5.52.0/24"), netip.Prefix{}},
		{"/coreos.com/network/subnets/10.5.52.0-024", p("10.5.52.0/24"), netip.Prefix{}}, // ParseUint takes leading zeros
		{"/x/subnets/0.0.0.0-0", p("0.0.0.0/0"), netip.Prefix{}},
		{"/x/subnets/10.5.52.0-24&fd00::-127", p("10.5.52.0/24"), p("fd00::/127")},
		{"/x/subnets/10.5.52.0-24&::-0", p("10.5.52.0/24"), p("::/0")},
		// Only the end of the key counts, as flanneld's unanchored pattern.
		{"junk 1.2.3.4/10.5.52.0-24", p("10.5.52.0/24"), netip.Prefix{}},
	}
	for _, tt := range ok {
		sn, sn6, err := ParseSubnetKey(tt.key)
		if err != nil || sn != tt.sn || sn6 != tt.sn6 {
			t.Errorf("ParseSubnetKey(%q) = %s, %s, %v; want %s, %s", tt.key, sn, sn6, err, tt.sn, tt.sn6)
		}
	}
	bad := []struct{ key, msg string }{
		{"/coreos.com/network/config", "must end in <IPv4>-<len>"},
		{"/x/subnets/10.5.52.0-24/", "must end in"},
		{"/x/subnets/10.5.52.0-32", `length "32": must be in 0..31`},              // flanneld's 5-bit length
		{"/x/subnets/10.5.52.0-24&fd00::-128", `length "128": must be in 0..127`}, // 7 bits
		{"/x/subnets/10.5.300.0-24", `"10.5.300.0": must be an IPv4 address`},
		{"/x/subnets/10.5y52z0-24", "must be an IPv4 address"}, // the pattern's unescaped dots match, the address does not parse
		{"/x/subnets/010.5.52.0-24", "must be an IPv4 address"},
		{"/x/subnets/10.5.52.7-24", "host bits must be zero (10.5.52.0/24)"},
		{"/x/subnets/10.5.52.0-24&fd00::1-64", "host bits must be zero"},
		{"/x/subnets/10.5.52.0-24&::ffff:a05:3400-120", "must be an IPv6 address"},
		{"/x/subnets/10.5.52.0-24&fd00:::-64", "must be an IPv6 address"},
	}
	for _, tt := range bad {
		sn, sn6, err := ParseSubnetKey(tt.key)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseSubnetKey(%q) = %s, %s, %v; want an error containing %q", tt.key, sn, sn6, err, tt.msg)
		}
	}
}
