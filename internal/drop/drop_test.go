package drop

import "testing"

// TestNamesStableAndDistinct: every reason has a name of its own, the names
// metrics carry do not change, and a value past the last reason is
// "unknown".
func TestNamesStableAndDistinct(t *testing.T) {
	seen := map[string]Reason{}
	for r := OK; r < NumReasons; r++ {
		name := r.String()
		if name == "unknown" || name == "" {
			t.Errorf("reason %d has no name", r)
		}
		if o, dup := seen[name]; dup {
			t.Errorf("reasons %d and %d share the name %q", o, r, name)
		}
		seen[name] = r
	}
	for r, want := range map[Reason]string{TTLExpired: "ttl_expired", NotForUs: "not_for_us", NoRoute: "no_route",
		SourceOutsideSubnet: "source_outside_subnet", TUNShortRead: "tun_short_read", BadIPChecksum: "bad_ip_checksum",
		NumReasons: "unknown"} {
		if r.String() != want {
			t.Errorf("Reason(%d).String() = %q, want %q", r, r.String(), want)
		}
	}
}
