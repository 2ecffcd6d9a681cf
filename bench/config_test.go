package bench

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{FeltBin: "felt", Scenarios: []Scenario{FeltVXLAN, Bare}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Repeat != 3 || c.Duration != 5*time.Second || c.Pings != 200 || c.Streams != 4 {
		t.Errorf("defaults: repeat %d duration %v pings %d streams %d", c.Repeat, c.Duration, c.Pings, c.Streams)
	}
	// kernel-vxlan added (the yardstick), report order whatever the input's.
	if want := []Scenario{Bare, KernelVXLAN, FeltVXLAN}; !slices.Equal(c.Scenarios, want) {
		t.Errorf("scenarios %v, want %v", c.Scenarios, want)
	}
	if !slices.Equal(c.Underlays, AllUnderlays) {
		t.Errorf("underlays %v", c.Underlays)
	}
	q := Config{FeltBin: "felt", Quick: true, Repeat: 2}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	if q.Repeat != 2 || q.Duration != time.Second || q.Pings != 20 {
		t.Errorf("quick: repeat %d (given 2) duration %v pings %d", q.Repeat, q.Duration, q.Pings)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string // the field, value and rule should all show
	}{
		{Config{}, "FeltBin"},
		{Config{FeltBin: "f", Underlays: []Underlay{"nic"}}, `underlay "nic": must be one of veth, wire`},
		{Config{FeltBin: "f", Scenarios: []Scenario{"wg"}}, `scenario "wg": must be one of`},
		{Config{FeltBin: "f", Repeat: -1}, "repeat -1: must be between 1 and 100"},
		{Config{FeltBin: "f", Duration: 1500 * time.Millisecond}, "duration 1.5s: must be whole seconds"},
		{Config{FeltBin: "f", Pings: 1}, "pings 1: must be between 2"},
		{Config{FeltBin: "f", Streams: 1}, "streams 1: must be between 2"},
		{Config{FeltBin: "f", Name: "Bad-Name"}, `name "Bad-Name": must be 1 to 10 lower-case`},
		{Config{FeltBin: "f", Name: "abcdefghijk"}, "name"},
		{Config{FeltBin: "f", Baseline: FeltUDP}, `baseline "felt-udp": must be bare or kernel-vxlan`},
		{Config{FeltBin: "f", Scenarios: []Scenario{FlanneldUDP}}, `scenario "flanneld-udp": needs a flanneld binary`},
		{Config{FeltBin: "f", Scenarios: []Scenario{"bare[x]"}}, `scenario "bare[x]": must be one of`},
		{Config{FeltBin: "f", FeltFlags: []string{" "}}, `felt flags " ": empty`},
		{Config{FeltBin: "f", FeltFlags: []string{"--a 1", "--a  1"}}, `felt flags "--a  1": given twice`},
		{Config{FeltBin: "f", FeltFlags: []string{"--x [1]"}}, `felt flags "--x [1]": must not hold [ or ]`},
		{Config{FeltBin: "f", Scenarios: []Scenario{Bare}, FeltFlags: []string{"--x"}}, `felt flags ["--x"]: no felt scenario`},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.c, err, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for in, want := range map[string][]Underlay{"both": AllUnderlays, "": AllUnderlays, "veth": {Veth}, "wire": {Wire}} {
		got, err := ParseUnderlays(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseUnderlays(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseUnderlays("nic"); err == nil || !strings.Contains(err.Error(), `"nic"`) {
		t.Errorf("ParseUnderlays(nic): %v", err)
	}
	got, err := ParseScenarios(" felt-udp,bare,felt-udp")
	if err != nil || !slices.Equal(got, []Scenario{FeltUDP, Bare}) {
		t.Errorf("ParseScenarios = %v, %v", got, err)
	}
	if got, err := ParseScenarios("all"); got != nil || err != nil {
		t.Errorf("all = %v, %v; want nil (the default, which --flanneld extends)", got, err)
	}
	if got, err := ParseScenarios("flanneld-host-gw,felt-udp"); err != nil || !slices.Equal(got, []Scenario{FlanneldHostGW, FeltUDP}) {
		t.Errorf("ParseScenarios(flanneld-host-gw,felt-udp) = %v, %v", got, err)
	}
	for in, want := range map[string]Scenario{"": "", "auto": "", "bare": Bare, "kernel-vxlan": KernelVXLAN} {
		if got, err := ParseBaseline(in); err != nil || got != want {
			t.Errorf("ParseBaseline(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseBaseline("felt-udp"); err == nil || !strings.Contains(err.Error(), `baseline "felt-udp": must be auto, bare or kernel-vxlan`) {
		t.Errorf("ParseBaseline(felt-udp): %v", err)
	}
	if _, err := ParseScenarios("bare,flannel"); err == nil || !strings.Contains(err.Error(), `"flannel"`) {
		t.Errorf("ParseScenarios(bare,flannel): %v", err)
	}
}

func TestRotate(t *testing.T) {
	s := AllScenarios
	seen := map[Scenario]bool{}
	for r := range s {
		o := rotate(s, r)
		if len(o) != len(s) {
			t.Fatalf("rotate %d: %v", r, o)
		}
		seen[o[0]] = true
		for _, sc := range s {
			if !slices.Contains(o, sc) {
				t.Fatalf("rotate %d lost %s: %v", r, sc, o)
			}
		}
	}
	if len(seen) != len(s) {
		t.Errorf("every scenario should run first once in %d repetitions: %v", len(s), seen)
	}
	if !slices.Equal(s, AllScenarios) || &rotate(s, 0)[0] == &s[0] {
		t.Error("rotate must not share or change its input")
	}
}

// Flanneld adds its scenarios to the default; felt flags add one variant of
// every felt scenario, named base[flags], after its base; a bare baseline
// is added when asked for instead of kernel-vxlan.
func TestConfigScenarios(t *testing.T) {
	c := Config{FeltBin: "f", Flanneld: "/usr/bin/flanneld", FeltFlags: []string{"GOMAXPROCS=1", " --x  2 "}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Scenario{Bare, KernelVXLAN, FeltUDP, "felt-udp[GOMAXPROCS=1]", "felt-udp[--x 2]", FeltVXLAN,
		"felt-vxlan[GOMAXPROCS=1]", "felt-vxlan[--x 2]", FeltWireGuard, "felt-wireguard[GOMAXPROCS=1]", "felt-wireguard[--x 2]",
		WireGuardGo, FlanneldUDP, FlanneldVXLAN, FlanneldHostGW}
	if !slices.Equal(c.Scenarios, want) {
		t.Errorf("scenarios\n%v, want\n%v", c.Scenarios, want)
	}
	v := Scenario("felt-vxlan[--x 2]")
	if v.Base() != FeltVXLAN || v.FeltFlags() != "--x 2" || !v.felt() || v.flanneld() || FeltUDP.FeltFlags() != "" {
		t.Errorf("%s: base %s flags %q", v, v.Base(), v.FeltFlags())
	}
	b := Config{FeltBin: "f", Baseline: Bare, Scenarios: []Scenario{FeltUDP}}
	if err := b.Validate(); err != nil || !slices.Equal(b.Scenarios, []Scenario{Bare, FeltUDP}) {
		t.Errorf("bare baseline: %v, %v", b.Scenarios, err)
	}
	env, args := splitFeltFlags("GOMAXPROCS=1 GODEBUG=x=1 --tun-name f1 A=b")
	if !slices.Equal(env, []string{"GOMAXPROCS=1", "GODEBUG=x=1"}) || !slices.Equal(args, []string{"--tun-name", "f1", "A=b"}) {
		t.Errorf("splitFeltFlags: env %q args %q", env, args)
	}
	if env, args := splitFeltFlags("--x=1 lower=1"); len(env) != 0 || len(args) != 2 {
		t.Errorf("flags are no environment: env %q args %q", env, args)
	}
}

// The baseline: kernel-vxlan where the kernel has vxlan, otherwise bare
// (added if not asked for, the vxlan scenarios skipped with the reason);
// an explicit kernel-vxlan baseline without vxlan is an error.
func TestPlan(t *testing.T) {
	noVXLAN := errors.New("ip link add fbprobe0 type vxlan ...: exit status 2: Error: Unknown device type.")
	cfg := func(base Scenario, scs ...Scenario) *Config {
		c := &Config{FeltBin: "f", Flanneld: "fl", Baseline: base, Scenarios: scs}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	have := func(string) error { return nil }
	base, scs, skip, err := plan(cfg("", FeltUDP, FlanneldVXLAN), nil, have)
	if err != nil || base != KernelVXLAN || !slices.Equal(scs, []Scenario{KernelVXLAN, FeltUDP, FlanneldVXLAN}) || len(skip) != 0 {
		t.Errorf("auto with vxlan: %s %v %v %v", base, scs, skip, err)
	}
	base, scs, skip, err = plan(cfg("", FeltUDP, FlanneldVXLAN), noVXLAN, have)
	if err != nil || base != Bare || !slices.Equal(scs, []Scenario{Bare, KernelVXLAN, FeltUDP, FlanneldVXLAN}) {
		t.Errorf("auto without vxlan: %s %v %v", base, scs, err)
	}
	if len(skip) != 2 || !strings.Contains(skip[KernelVXLAN], "cannot create vxlan devices (ip link add fbprobe0") || skip[FlanneldVXLAN] == "" {
		t.Errorf("auto without vxlan: skip %v", skip)
	}
	if base, _, _, err := plan(cfg(Bare, FeltUDP), nil, have); err != nil || base != Bare {
		t.Errorf("bare with vxlan: %s %v", base, err)
	}
	if base, scs, skip, err := plan(cfg(Bare, FeltUDP), noVXLAN, have); err != nil || base != Bare || !slices.Equal(scs, []Scenario{Bare, FeltUDP}) || len(skip) != 0 {
		t.Errorf("bare without vxlan: %s %v %v %v", base, scs, skip, err)
	}
	if _, _, _, err := plan(cfg(KernelVXLAN, FeltUDP), noVXLAN, have); err == nil || !strings.Contains(err.Error(), "baseline kernel-vxlan: this kernel cannot create vxlan devices") || !strings.Contains(err.Error(), "--baseline bare") {
		t.Errorf("kernel-vxlan without vxlan: %v", err)
	}
}

// wireguard-go is not run, with the reason, where wireguard-go or wg is
// missing; felt-wireguard needs neither.
func TestPlanWithoutWireGuardTools(t *testing.T) {
	c := &Config{FeltBin: "f", Scenarios: []Scenario{FeltWireGuard, WireGuardGo}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	noWG := func(name string) error {
		if name == "wg" {
			return errors.New(`exec: "wg": executable file not found in $PATH`)
		}
		return nil
	}
	_, scs, skip, err := plan(c, nil, noWG)
	if err != nil || !slices.Equal(scs, []Scenario{KernelVXLAN, FeltWireGuard, WireGuardGo}) || len(skip) != 1 {
		t.Fatalf("plan: %v %v %v", scs, skip, err)
	}
	if why := skip[WireGuardGo]; !strings.Contains(why, "not run: wg not found (Debian: apt-get install wireguard-go wireguard-tools)") {
		t.Errorf("wireguard-go skipped because %q", why)
	}
}

// The scenario table: every agent row's config parses, no two overlays (nor
// kernel-vxlan's, wireguard-go's, the underlay) overlap, and the rows'
// properties come out as the run uses them.
func TestScenarioTable(t *testing.T) {
	nets := map[string]netip.Prefix{
		"kernel-vxlan": netip.MustParsePrefix("10.7.0.0/16"),
		"wireguard-go": netip.MustParsePrefix(wgGoNet),
		"underlay":     netip.MustParsePrefix("10.99.0.0/24"),
	}
	seen := map[Scenario]bool{}
	for _, d := range scenarioTable {
		if seen[d.name] || d.name.Base() != d.name || !nameOK(strings.ReplaceAll(string(d.name), "-", "x")) {
			t.Errorf("scenario %q: repeated or not a plain name", d.name)
		}
		seen[d.name] = true
		for _, v := range d.vs {
			if _, ok := v.def(); !ok || v == d.name {
				t.Errorf("%s: paired with %q, not another scenario", d.name, v)
			}
		}
		if d.kind != kindFelt && d.kind != kindFlanneld {
			if d.config != "" {
				t.Errorf("%s: a network config without agents", d.name)
			}
			continue
		}
		n, err := parseAgentNet(d)
		if err != nil {
			t.Fatal(err)
		}
		if n.prefix != "/felt-bench/"+string(d.name) || n.config != d.config {
			t.Errorf("%s: %+v", d.name, n)
		}
		for other, p := range nets {
			if p.Overlaps(n.network) {
				t.Errorf("%s's Network %s overlaps %s's %s", d.name, n.network, other, p)
			}
		}
		nets[string(d.name)] = n.network
	}
	if want := []Scenario{Bare, KernelVXLAN, FeltUDP, FeltVXLAN, FeltWireGuard, WireGuardGo}; !slices.Equal(AllScenarios, want) {
		t.Errorf("all = %v, want %v (felt-host-gw, felt-vxlan-direct and the IPv6 scenarios run on request only)", AllScenarios, want)
	}
	if want := []Scenario{FlanneldUDP, FlanneldVXLAN, FlanneldHostGW}; !slices.Equal(FlanneldScenarios, want) {
		t.Errorf("flanneld scenarios %v", FlanneldScenarios)
	}
	if got, err := ParseScenarios("felt-host-gw,felt-vxlan-direct,wireguard-go"); err != nil || !slices.Equal(got, []Scenario{FeltHostGW, FeltVXLANDirect, WireGuardGo}) {
		t.Errorf("ParseScenarios = %v, %v", got, err)
	}
	for sc, want := range map[Scenario][5]bool{ // felt, flanneld, agents, countsPackets, needsVXLAN
		Bare: {}, KernelVXLAN: {false, false, false, false, true},
		FeltUDP: {true, false, true, true, false}, "felt-vxlan[--x]": {true, false, true, true, false},
		FeltWireGuard: {true, false, true, false, false}, FeltHostGW: {true, false, true, false, false},
		FeltVXLANDirect: {true, false, true, false, false}, WireGuardGo: {false, false, true, false, false},
		FlanneldUDP: {false, true, true, false, false}, FlanneldVXLAN: {false, true, true, false, true},
		"nosuch": {},
	} {
		if got := [5]bool{sc.felt(), sc.flanneld(), sc.agents(), sc.countsPackets(), sc.needsVXLAN()}; got != want {
			t.Errorf("%s: felt, flanneld, agents, countsPackets, needsVXLAN = %v, want %v", sc, got, want)
		}
	}
	if !slices.Equal(WireGuardGo.needsTools(), []string{"wireguard-go", "wg"}) || FeltWireGuard.needsTools() != nil {
		t.Errorf("needsTools: %v, %v", WireGuardGo.needsTools(), FeltWireGuard.needsTools())
	}
	if vs := Scenario("felt-wireguard[--x]").vs(); !slices.Equal(vs, []Scenario{FeltUDP, WireGuardGo}) {
		t.Errorf("felt-wireguard[--x] paired with %v", vs)
	}
	// The longest lab name (a 10-letter --name and the underlay's letter)
	// still leaves device names within IFNAMSIZ.
	if d := wgGoDev("abcdefghijv", 1); len(d) > 15 {
		t.Errorf("wireguard-go device %q: %d bytes, over 15", d, len(d))
	}
}

// A row that does not parse is refused with the scenario, the value and the
// rule.
func TestParseAgentNetErrors(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{`{"Network":"10.5.0.0/16"`, "unexpected end of JSON"},
		{`{"Network":"10.5.0.1/16","Backend":{"Type":"udp"}}`, `Network "10.5.0.1/16": must be a network prefix`},
		{`{"Backend":{"Type":"udp"}}`, `Network "": must be a network prefix`},
		{`{"Network":"10.5.0.0/16"}`, "no Backend.Type"},
	} {
		_, err := parseAgentNet(scenarioDef{name: "felt-x", kind: kindFelt, config: tc.config})
		if err == nil || !strings.Contains(err.Error(), "scenario felt-x") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.config, err, tc.want)
		}
	}
}
