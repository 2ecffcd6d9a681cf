package agent

import (
	"strings"
	"testing"

	"github.com/feltnet/felt/lease"
)

func TestUnsupported(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   []string // prefixes of the warnings, in order
	}{
		{`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`, nil},
		{`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}`, nil}, // supported: kernel routes to on-link peers
		{`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","GBP":true,"Learning":true}}`, []string{"Backend.GBP"}},
		{`{"Network":"10.5.0.0/16","Backend":{"Type":"udp","DirectRouting":true}}`, nil}, // a vxlan key: udp ignores it, as flanneld
		{`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan","DirectRouting":true,"GBP":true}}`,
			[]string{"Backend.GBP"}}, // EnableIPv6 and DirectRouting are supported
		{`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}`, nil},
		{`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard"}}`, []string{"EnableIPv6"}},
	} {
		c, err := lease.ParseConfig([]byte(tc.config))
		if err != nil {
			t.Fatalf("%s: %v", tc.config, err)
		}
		got := unsupported(c)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d warnings %q, want %d %q", tc.config, len(got), got, len(tc.want), tc.want)
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(got[i], w+":") {
				t.Errorf("%s: warning %d is %q, want it about %s", tc.config, i, got[i], w)
			}
		}
	}
}
