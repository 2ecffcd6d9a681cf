package main

import (
	"strings"
	"testing"
)

// Bad bench flags are refused with exit status 2 and a message naming the
// flag, the value and the rule, before any lab is built (so no root needed).
func TestBenchFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--underlay", "nic"}, `--underlay: underlay "nic": must be veth, wire or both`},
		{[]string{"--scenarios", "bare,wireguard"}, `--scenarios: scenario "wireguard": must be one of`},
		{[]string{"--duration", "1500ms"}, "--duration 1.5s: must be whole seconds"},
		{[]string{"--repeat", "-2"}, "--repeat -2"},
		{[]string{"--streams", "1"}, "streams 1: must be between 2 and 128"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--baseline", "felt-udp"}, `--baseline: baseline "felt-udp": must be auto, bare or kernel-vxlan`},
		{[]string{"--scenarios", "flanneld-udp"}, `scenario "flanneld-udp": needs a flanneld binary (Config.Flanneld, --flanneld PATH)`},
		{[]string{"--felt-flags", "--x", "--felt-flags", "--x"}, `felt flags "--x": given twice`},
		{[]string{"--felt-flags", ""}, `felt flags "": empty`},
		{[]string{"--scenarios", "bare", "--felt-flags", "--x"}, `no felt scenario to run them with`},
		{[]string{"--compare", "/nonexistent/old.json"}, "--compare: bench: open /nonexistent/old.json"},
	} {
		r := felt(t, append([]string{"bench"}, tt.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("felt bench %v: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.msg)
		}
	}
}
