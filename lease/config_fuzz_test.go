package lease

import (
	"encoding/json"
	"testing"
)

// Invariants: no panic; whatever parses re-marshals, re-parses to the same
// value, and is accepted by Validate.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`,
		`{"network":"10.3.0.0/16"}`,
		`{"Network":"10.5.0.0/16","SubnetLen":26,"SubnetMin":"10.5.1.0","SubnetMax":"10.5.9.192","Backend":{"Type":"udp","Port":9000}}`,
		`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":64,"Backend":{"type":"VXLAN","VNI":4096,"Port":4789,"MacPrefix":"0E-2A"}}`,
		`{"Network":"10.5.0.0/29"}`,
		`{"Network":"10.5.0.0/16","Backend":null}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig(%q) returned a config Validate rejects: %v", data, err)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of parsed %q: %v", data, err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of %s (from %q): %v", out, data, err)
		}
		if !c.Equal(c2) {
			t.Fatalf("round trip of %q via %s:\n got %+v\nwant %+v", data, out, *c2, *c)
		}
	})
}
