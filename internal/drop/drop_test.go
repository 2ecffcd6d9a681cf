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
	// The whole table, in order: metric label values and /status counter
	// names that users scrape.
	want := []string{"ok", "too_short", "bad_header", "wrong_vni", "not_for_us", "loop_mac", "bad_ip", "oversize",
		"ttl_expired", "no_route", "own_subnet", "unknown_sender", "source_outside_subnet", "not_local", "send_failed",
		"write_failed", "tun_short_read", "tun_bad_header", "tun_bad_gso", "bad_checksum", "bad_ip_checksum"}
	if len(want) != int(NumReasons) {
		t.Fatalf("%d reasons, the table pins %d: add the new name here (and keep the old ones)", NumReasons, len(want))
	}
	for r, name := range want {
		if got := Reason(r).String(); got != name {
			t.Errorf("Reason(%d).String() = %q, want %q", r, got, name)
		}
	}
	if got := NumReasons.String(); got != "unknown" {
		t.Errorf("NumReasons.String() = %q, want unknown", got)
	}
}
