package main

import (
	"os"
	"path/filepath"
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
		{[]string{"--duration", "3x"}, `invalid value "3x" for flag -duration: "3x": must be whole seconds, such as 3 or 3s`},
		{[]string{"--duration", "-3"}, "--duration -3s: must be whole seconds"},
		// A bare number is seconds: the error is the next flag's.
		{[]string{"--duration", "3", "--underlay", "nic"}, `--underlay: underlay "nic"`},
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

// --from writes the table and chart of an earlier results.json without a
// run (so no root), here compared with itself: every new/old is 1.
func TestBenchFromAndCompare(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	js := `{"started":"2026-11-27T14:12:26Z","settings":{"repeat":1},"underlays":[{"underlay":"wire","scenarios":[
		{"scenario":"kernel-vxlan","runs":[{"tcp1_gbps":8}],"median":{"tcp1_gbps":8,"ping_p50_us":40},"ratio_to_kernel_vxlan":{"tcp1_gbps":1}},
		{"scenario":"felt-udp","runs":[{"tcp1_gbps":4}],"median":{"tcp1_gbps":4,"ping_p50_us":300},"ratio_to_kernel_vxlan":{"tcp1_gbps":0.5}}]}]}`
	if err := os.WriteFile(old, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	r := felt(t, "bench", "--from", old, "--compare", old, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"new ÷ old: this run against " + old, "underlay wire", "1.00×", "wrote " + filepath.Join(out, "chart.svg")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	svg, err := os.ReadFile(filepath.Join(out, "chart.svg"))
	// The file predates baselines: its kernel-vxlan ratios are drawn.
	if err != nil || !strings.Contains(string(svg), `class="old"`) || !strings.Contains(string(svg), "felt-udp TCP 1 stream: 4.00 Gbit/s, 0.500× kernel-vxlan") {
		t.Errorf("chart without the old run's outlines: %v", err)
	}
	if r := felt(t, "bench", "--from", filepath.Join(dir, "none.json")); r.code != 2 || !strings.Contains(r.stderr, "--from: bench: open") {
		t.Errorf("missing --from file: exit %d, %q", r.code, r.stderr)
	}
}
