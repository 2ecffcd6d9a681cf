package lease

import (
	"encoding/json"
	"testing"
)

// Invariants: no panic; parsed attrs marshal, and the marshalled bytes parse
// back to attrs that marshal to the very same bytes.
func FuzzParseAttrs(f *testing.F) {
	for _, s := range []string{
		`{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`,
		`{"PublicIP":"192.168.64.4","PublicIPv6":null}`,
		`{"PublicIP":"192.168.64.5","PublicIPv6":"fd00::5","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:11:22:33:44"},"BackendV6Data":{ "a" : "<b>" }}`,
		`{"publicip":"10.0.0.1","BackendData":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAttrs(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("Marshal of parsed %q: %v", data, err)
		}
		b, err := ParseAttrs(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		out2, err := json.Marshal(b)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("marshal not stable: %s then %s, %v", out, out2, err)
		}
		if a.PublicIP != b.PublicIP || a.PublicIPv6 != b.PublicIPv6 || a.BackendType != b.BackendType {
			t.Fatalf("round trip changed %+v into %+v", a, b)
		}
		_, _, _ = a.VXLAN() // must not panic on any parsed value
	})
}
