package bench

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The IPv6 scenarios: what each is, their pairing, and that they stay out
// of `all` (they need the lab's IPv6 underlay).
func TestIPv6Scenarios(t *testing.T) {
	for sc, want := range map[Scenario]bool{
		KernelVXLAN6: true, FeltVXLAN6: true, "felt-vxlan6[--x]": true,
		KernelVXLAN: false, FeltVXLAN: false, Bare: false, FlanneldVXLAN: false, "nosuch": false,
	} {
		if got := sc.ipv6(); got != want {
			t.Errorf("%s: ipv6() = %v, want %v", sc, got, want)
		}
	}
	// felt, flanneld, agents, countsPackets, needsVXLAN
	for sc, want := range map[Scenario][5]bool{
		KernelVXLAN6: {false, false, false, false, true},
		FeltVXLAN6:   {true, false, true, true, false},
	} {
		if got := [5]bool{sc.felt(), sc.flanneld(), sc.agents(), sc.countsPackets(), sc.needsVXLAN()}; got != want {
			t.Errorf("%s: felt, flanneld, agents, countsPackets, needsVXLAN = %v, want %v", sc, got, want)
		}
	}
	if vs := FeltVXLAN6.vs(); !slices.Equal(vs, []Scenario{KernelVXLAN6}) {
		t.Errorf("felt-vxlan6 paired with %v, want kernel-vxlan6", vs)
	}
	if slices.Contains(AllScenarios, KernelVXLAN6) || slices.Contains(AllScenarios, FeltVXLAN6) {
		t.Errorf("all = %v: the IPv6 scenarios are on request only", AllScenarios)
	}
	if got, err := ParseScenarios("kernel-vxlan6,felt-vxlan6"); err != nil || !slices.Equal(got, []Scenario{KernelVXLAN6, FeltVXLAN6}) {
		t.Errorf("ParseScenarios = %v, %v", got, err)
	}
	if !hasIPv6([]Scenario{FeltUDP, FeltVXLAN6}) || hasIPv6(AllScenarios) || hasIPv6(nil) {
		t.Error("hasIPv6: wrong")
	}
	if n := agentNets[FeltVXLAN6]; !n.ipv6 || n.backend != "vxlan" {
		t.Errorf("felt-vxlan6's network: %+v", n)
	}
	// Every IPv6 prefix the lab uses is apart from the others.
	kernel6 := netip.MustParsePrefix("fd07::/16")
	for _, p := range []netip.Prefix{netip.MustParsePrefix("fd15::/48"), netip.PrefixFrom(underlay6(0), 64)} {
		if p.Overlaps(kernel6) {
			t.Errorf("%s overlaps kernel-vxlan6's %s", p, kernel6)
		}
	}
	if !kernel6.Contains(kernelSubnet6(0).Addr()) || !kernel6.Contains(kernelSubnet6(1).Addr()) || kernelSubnet6(0) == kernelSubnet6(1) {
		t.Errorf("kernel-vxlan6 subnets %s %s", kernelSubnet6(0), kernelSubnet6(1))
	}
}

// parseAgentNet reads EnableIPv6 from a scenario's config.
func TestParseAgentNetIPv6(t *testing.T) {
	for config, want := range map[string]bool{
		`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"vxlan"}}`: true,
		`{"Network":"10.5.0.0/16","EnableIPv6":false,"Backend":{"Type":"vxlan"}}`:                            false,
		`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`:                                               false,
	} {
		n, err := parseAgentNet(scenarioDef{name: "felt-x", kind: kindFelt, config: config})
		if err != nil || n.ipv6 != want {
			t.Errorf("%s: ipv6 %v, %v; want %v", config, n.ipv6, err, want)
		}
	}
}

// The measuring tools are pointed at the IPv6 server for an IPv6 dst, and
// stay as they were for IPv4.
func TestIPv6Tools(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.7.2.0"), netip.MustParseAddr("fd07:2::")
	if got := rrAddr(v4); got != netip.AddrPortFrom(v4, rrPort) {
		t.Errorf("rrAddr(%s) = %s", v4, got)
	}
	if got := rrAddr(v6); got != netip.AddrPortFrom(v6, rrPort6) || rrPort6 == rrPort || iperfPort == rrPort || iperfPort == rrPort6 {
		t.Errorf("rrAddr(%s) = %s", v6, got)
	}
	if got, want := pingArgs(v4, "-n", "-c", "1"), []string{"-n", "-c", "1", "10.7.2.0"}; !slices.Equal(got, want) {
		t.Errorf("pingArgs(%s) = %q, want %q", v4, got, want)
	}
	if got, want := pingArgs(v6, "-n", "-c", "1"), []string{"-n", "-c", "1", "-6", "fd07:2::"}; !slices.Equal(got, want) {
		t.Errorf("pingArgs(%s) = %q, want %q", v6, got, want)
	}
}

// readEnvPrefix finds FLANNEL_IPV6_SUBNET in a dual-stack subnet.env, says
// "not there yet" (os.ErrNotExist) without it and names the key of a bad
// value.
func TestReadEnvPrefixIPv6(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dual := write("dual", "FLANNEL_NETWORK=10.15.0.0/16\nFLANNEL_SUBNET=10.15.3.1/24\nFLANNEL_IPV6_NETWORK=fd15::/48\n"+
		"FLANNEL_IPV6_SUBNET=fd15:0:0:3::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n")
	if p, err := readEnvPrefix(dual, "FLANNEL_IPV6_SUBNET"); err != nil || p != netip.MustParsePrefix("fd15:0:0:3::1/64") || p.Masked().Addr() != netip.MustParseAddr("fd15:0:0:3::") {
		t.Errorf("FLANNEL_IPV6_SUBNET: %s, %v", p, err)
	}
	if p, err := readSubnet(dual); err != nil || p != netip.MustParsePrefix("10.15.3.1/24") {
		t.Errorf("FLANNEL_SUBNET: %s, %v", p, err)
	}
	v4 := write("v4", "FLANNEL_NETWORK=10.15.0.0/16\nFLANNEL_SUBNET=10.15.3.1/24\n")
	if _, err := readEnvPrefix(v4, "FLANNEL_IPV6_SUBNET"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no FLANNEL_IPV6_SUBNET") {
		t.Errorf("without FLANNEL_IPV6_SUBNET: %v", err)
	}
	bad := write("bad", "FLANNEL_IPV6_SUBNET=fd15::zz/64\n")
	if _, err := readEnvPrefix(bad, "FLANNEL_IPV6_SUBNET"); err == nil || errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), `FLANNEL_IPV6_SUBNET "fd15::zz/64"`) {
		t.Errorf("bad FLANNEL_IPV6_SUBNET: %v", err)
	}
}

// TestQuickRunIPv6 runs the IPv6 scenarios once on the veth lab: both are
// measured over IPv6 with every figure, and felt-vxlan6 has its ratios to
// kernel-vxlan6. It judges no numbers (the machine is shared).
func TestQuickRunIPv6(t *testing.T) {
	c, _, r, err := quickRun(t, 4*time.Minute, func(c *Config) { c.Scenarios = []Scenario{KernelVXLAN6, FeltVXLAN6} })
	if errors.Is(err, ErrRunsFailed) && r != nil {
		for _, u := range r.Underlays {
			for _, s := range u.Scenarios {
				t.Logf("%s: errors %v, skipped %q", s.Scenario, s.Errors, s.Skipped)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, c)
	if len(r.Underlays) != 1 {
		t.Fatalf("%d underlays", len(r.Underlays))
	}
	u := r.Underlays[0]
	for _, sc := range c.Scenarios {
		s := findScenario(&u, sc)
		if s == nil || len(s.Runs) != 1 || len(s.Errors) != 0 {
			t.Fatalf("%s: %+v", sc, s)
		}
		checkSample(t, string(sc), sc, s.Median)
	}
	if f := findScenario(&u, FeltVXLAN6); f.RatioTo[KernelVXLAN6]["tcp1_gbps"] <= 0 {
		t.Errorf("felt-vxlan6 has no ratio to kernel-vxlan6: %v", f.RatioTo)
	}
	var text bytes.Buffer
	if err := r.WriteTable(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "felt-vxlan6  kernel-vxlan6") {
		t.Errorf("no felt-vxlan6 ÷ kernel-vxlan6 row in the text report:\n%s", text.String())
	}
}
