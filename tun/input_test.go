package tun

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		what string
		err  error
		want []string // all must appear in the message
	}{
		{"empty name", firstErr(Create("", 1400)), []string{"empty"}},
		{"long name", firstErr(Create("a-very-long-tun-name", 1400)), []string{"a-very-long-tun-name", "15"}},
		{"slash", firstErr(Create("a/b", 1400)), []string{"a/b", "'/'"}},
		{"mtu", firstErr(Create("ok0", 20)), []string{"mtu 20", "68"}},
		{"config mtu", secondErr(Configure("ok0", NetConfig{MTU: 70000})), []string{"NetConfig.MTU", "70000"}},
		{"route host bits", secondErr(Configure("ok0", NetConfig{Routes: []netip.Prefix{netip.MustParsePrefix("10.5.1.7/16")}})),
			[]string{"NetConfig.Routes[0]", "10.5.1.7/16", "10.5.0.0/16"}},
		{"network host bits", secondErr(Configure("ok0", NetConfig{Network: netip.MustParsePrefix("10.5.1.7/16")})),
			[]string{"NetConfig.Network", "10.5.1.7/16"}},
		{"route prefix", AddRoute("ok0", netip.Prefix{}), []string{"route prefix", "invalid"}},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.what)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.what, tc.err, w)
			}
		}
	}
}

func firstErr[T any](_ T, err error) error  { return err }
func secondErr[T any](_ T, err error) error { return err }
