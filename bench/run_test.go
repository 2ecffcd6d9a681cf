package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// buildFelt builds the felt binary for a run test, or skips the test where
// a run cannot be made.
func buildFelt(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces, TUN and vxlan devices (CI runs as root)")
	}
	if testing.Short() {
		t.Skip("end-to-end benchmark run: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "felt")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/feltnet/felt/cmd/felt").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// quickRun is a smoke run (veth only, quick) of felt built from this tree,
// its config changed by set, within d; it logs the progress and returns
// the config it ran, the progress text and Run's answer.
func quickRun(t *testing.T, d time.Duration, set func(*Config)) (Config, string, *Report, error) {
	t.Helper()
	bin := buildFelt(t) // before the clock starts: a cold build is slow
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var progress bytes.Buffer
	c := Config{FeltBin: bin, Underlays: []Underlay{Veth}, Quick: true, Name: fmt.Sprintf("fbt%d", os.Getpid()%100000),
		Progress: &progress, Log: zaptest.NewLogger(t)}
	set(&c)
	r, err := Run(ctx, c)
	t.Logf("progress:\n%s", progress.String())
	return c, progress.String(), r, err
}

// noLeftovers checks that nothing of the labs is left behind.
func noLeftovers(t *testing.T, c Config) {
	t.Helper()
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), c.Name) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}

// checkSample checks that every figure a scenario must have is there and
// sane; it does not judge the numbers: the machine is shared.
func checkSample(t *testing.T, name string, sc Scenario, m Sample) {
	t.Helper()
	for _, mt := range metrics {
		v := *mt.get(&m)
		agents := sc.agents()
		// Agents that forward nothing (kernel routes carry host-gw's and
		// DirectRouting's packets) may use no measurable CPU in a run.
		optional := mt.lossMetric() || (mt.key == "agent_allocs_per_packet" && !sc.countsPackets()) || (mt.agent && !agents) ||
			(mt.key == "agent_cpu_s_per_gb" && (sc.flanneld() || sc.felt() && !sc.countsPackets()))
		if v < 0 || (v == 0 && !optional) {
			t.Errorf("%s: %s = %g", name, mt.key, v)
		}
		if mt.agent && !agents && v != 0 {
			t.Errorf("%s: %s %g for a path without agents", name, mt.key, v)
		}
		if mt.lossMetric() && v > 100 {
			t.Errorf("%s: %s = %g %%", name, mt.key, v)
		}
	}
	// A packet path that allocated per packet would show 1 or more; the
	// agents' background work is well below one per packet.
	if m.AgentAllocsPerPacket >= 0.5 {
		t.Errorf("%s: %g heap allocations per forwarded packet, want ≪ 1", name, m.AgentAllocsPerPacket)
	}
	if m.PingP99us < m.PingP50us || m.RR1C1P99us < m.RR1C1P50us || m.RR1kC16P99us < m.RR1kC16P50us {
		t.Errorf("%s: a p99 under its p50: ping %g/%g, RR %g/%g, %g/%g", name, m.PingP50us, m.PingP99us,
			m.RR1C1P50us, m.RR1C1P99us, m.RR1kC16P50us, m.RR1kC16P99us)
	}
}

// TestQuickRun runs the whole suite in quick mode (veth only; both
// underlays with FELT_LONG=1) and checks that the report is complete and
// well-formed, felt-wireguard and wireguard-go included (wireguard-go is
// reported as not run where Debian's wireguard-go or wg is missing). It
// does not judge the numbers: the machine is shared.
func TestQuickRun(t *testing.T) {
	var noWG string
	for _, tool := range WireGuardGo.needsTools() {
		if _, err := exec.LookPath(tool); err != nil {
			noWG = tool
			t.Logf("%s not found (Debian: apt-get install wireguard-go wireguard-tools): the wireguard-go scenario must be reported as not run", tool)
		}
	}
	underlays := []Underlay{Veth}
	if os.Getenv("FELT_LONG") == "1" {
		underlays = AllUnderlays
	}
	c, progress, r, err := quickRun(t, 5*time.Minute, func(c *Config) {
		c.Underlays, c.ProfileDir = underlays, filepath.Join(t.TempDir(), "prof")
	})
	if err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, c)

	if len(r.Underlays) != len(underlays) {
		t.Fatalf("%d underlays in the report, want %d", len(r.Underlays), len(underlays))
	}
	for i, u := range r.Underlays {
		if u.Underlay != underlays[i] || len(u.Scenarios) != len(AllScenarios) || u.Baseline != KernelVXLAN {
			t.Fatalf("underlay %d: %s with %d scenarios, baseline %q", i, u.Underlay, len(u.Scenarios), u.Baseline)
		}
		for j, s := range u.Scenarios {
			name := string(u.Underlay) + "/" + string(s.Scenario)
			if s.Scenario == WireGuardGo && noWG != "" {
				if len(s.Runs)+len(s.Errors) != 0 || !strings.Contains(s.Skipped, "not run: "+noWG+" not found") {
					t.Errorf("%s: %d runs, errors %v, skipped %q", name, len(s.Runs), s.Errors, s.Skipped)
				}
				continue
			}
			if s.Scenario != AllScenarios[j] || len(s.Runs) != 1 || len(s.Errors) != 0 {
				t.Errorf("%s: %d runs, errors %v", name, len(s.Runs), s.Errors)
				continue
			}
			checkSample(t, name, s.Scenario, s.Median)
			for _, k := range chartMetrics {
				if _, ok := s.RatioToBaseline[k]; !ok {
					t.Errorf("%s: no ratio for %s", name, k)
				}
			}
			if s.Scenario == KernelVXLAN && (s.Ratio["tcp1_gbps"] != 1 || s.RatioToBaseline["tcp1_gbps"] != 1) {
				t.Errorf("kernel-vxlan's ratio to itself is %g", s.Ratio["tcp1_gbps"])
			}
			if !strings.Contains(progress, string(u.Underlay)+" rep 1/1 "+string(s.Scenario)) {
				t.Errorf("no progress line for %s", name)
			}
			for _, v := range s.Scenario.vs() {
				if other := findScenario(&u, v); other != nil && len(other.Runs) > 0 && s.RatioTo[v]["tcp1_gbps"] <= 0 {
					t.Errorf("%s: no ratio to %s: %v", name, v, s.RatioTo)
				}
			}
		}
		if w := findScenario(&u, FeltWireGuard); w == nil || len(w.RatioTo[FeltUDP]) == 0 {
			t.Errorf("%s: felt-wireguard has no ratios to felt-udp", u.Underlay)
		}
	}
	feltScenarios := len(slices.DeleteFunc(slices.Clone(AllScenarios), func(s Scenario) bool { return !s.felt() }))
	profs, _ := filepath.Glob(filepath.Join(c.ProfileDir, "*.pprof"))
	if want := 2 * feltScenarios * len(underlays); len(profs) != want {
		t.Errorf("%d agent profiles, want %d: %v", len(profs), want, profs)
	}
	for _, p := range profs {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("profile %s empty or missing: %v", p, err)
		}
	}
	writeAndCheckFiles(t, r)
}

// TestRunWithoutVXLAN runs the suite as on a kernel without vxlan (the
// vxlanType hook names a link type no kernel has, so `ip link add` fails as
// it does there) and without wg (the lookTool hook): the run completes
// without failures, kernel-vxlan and wireguard-go are reported as not run
// with the reason, bare is added and every ratio is to it.
func TestRunWithoutVXLAN(t *testing.T) {
	defer func(v string) { vxlanType = v }(vxlanType)
	vxlanType = "feltnovxlan"
	defer func(f func(string) error) { lookTool = f }(lookTool)
	lookTool = func(name string) error {
		if name == "wg" {
			return fmt.Errorf(`exec: %q: executable file not found in $PATH`, name)
		}
		return nil
	}
	c, _, r, err := quickRun(t, 5*time.Minute, func(c *Config) { c.Scenarios = []Scenario{FeltUDP, WireGuardGo} })
	if err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, c)
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())
	if r.Settings.Baseline != Bare || !strings.HasPrefix(r.Machine.KernelVXLAN, "no: ") || r.Failed() != 0 {
		t.Fatalf("baseline %q, kernel vxlan %q, %d failed", r.Settings.Baseline, r.Machine.KernelVXLAN, r.Failed())
	}
	u := r.Underlays[0]
	var got []Scenario
	for _, s := range u.Scenarios {
		got = append(got, s.Scenario)
	}
	if !slices.Equal(got, []Scenario{Bare, KernelVXLAN, FeltUDP, WireGuardGo}) || u.Baseline != Bare {
		t.Fatalf("scenarios %v, baseline %q", got, u.Baseline)
	}
	k, felt, wgo := u.Scenarios[1], u.Scenarios[2], u.Scenarios[3]
	if !strings.Contains(wgo.Skipped, "not run: wg not found (Debian: apt-get install wireguard-go wireguard-tools)") || len(wgo.Runs)+len(wgo.Errors) != 0 {
		t.Errorf("wireguard-go: skipped %q, %d runs, errors %v", wgo.Skipped, len(wgo.Runs), wgo.Errors)
	}
	if !strings.Contains(k.Skipped, "cannot create vxlan devices") || len(k.Runs)+len(k.Errors) != 0 {
		t.Errorf("kernel-vxlan: skipped %q, %d runs, errors %v", k.Skipped, len(k.Runs), k.Errors)
	}
	checkSample(t, "felt-udp", FeltUDP, felt.Median)
	if q := felt.RatioToBaseline["tcp1_gbps"]; q <= 0 || q != felt.Median.TCP1Gbps/u.Scenarios[0].Median.TCP1Gbps || len(felt.Ratio) != 0 {
		t.Errorf("felt-udp: ratio to bare %g, to kernel %v", q, felt.Ratio)
	}
	for _, want := range []string{"this kernel cannot create vxlan devices", "underlay veth: ratios to bare", "kernel-vxlan not run",
		"wireguard-go not run: wg not found"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	dir := writeAndCheckFiles(t, r)
	svg, _ := os.ReadFile(filepath.Join(dir, SVGFile))
	if !strings.Contains(string(svg), "ratio to bare") {
		t.Error("the chart does not say its ratios are to bare")
	}
}

// TestRunFlanneldStandin runs the flanneld scenarios with the stand-in
// script (felt under flanneld's command line; there is no flanneld here)
// beside felt-udp and one felt flags variant: flanneld-udp, -vxlan and
// -host-gw carry traffic (every figure, UDP over host-gw's kernel routes
// included) and felt's ratios to them are reported.
func TestRunFlanneldStandin(t *testing.T) {
	c, _, r, err := quickRun(t, 8*time.Minute, func(c *Config) {
		t.Setenv("STANDIN_FELT", c.FeltBin)
		c.Flanneld = "testdata/flanneld-standin.sh"
		c.Scenarios = []Scenario{FeltUDP, FlanneldUDP, FlanneldVXLAN, FlanneldHostGW}
		c.FeltFlags = []string{"GOMAXPROCS=1"}
	})
	if err != nil {
		t.Fatalf("Run: %v, want every run to succeed", err)
	}
	noLeftovers(t, c)
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())
	u := r.Underlays[0]
	want := []Scenario{KernelVXLAN, FeltUDP, "felt-udp[GOMAXPROCS=1]", FlanneldUDP, FlanneldVXLAN, FlanneldHostGW}
	var got []Scenario
	for _, s := range u.Scenarios {
		got = append(got, s.Scenario)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios %v, want %v", got, want)
	}
	for _, s := range u.Scenarios {
		if len(s.Runs) != 1 || len(s.Errors) != 0 {
			t.Errorf("%s: %d runs, errors %v", s.Scenario, len(s.Runs), s.Errors)
			continue
		}
		checkSample(t, string(s.Scenario), s.Scenario, s.Median)
		if s.Scenario.felt() && s.RatioToFlanneld["tcp1_gbps"] <= 0 {
			t.Errorf("%s: no ratio to flanneld-udp: %v", s.Scenario, s.RatioToFlanneld)
		}
	}
	for _, want := range []string{"felt ÷ flanneld"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	writeAndCheckFiles(t, r)
}

// TestQuickRunKernelRouted runs the kernel-routed scenarios (felt-host-gw,
// felt-vxlan-direct) once on the veth lab: every figure is there, the UDP
// ones included. Their server is a pod address whose route back to the
// client leaves through the underlay, so an iperf3 server not bound to it
// answered UDP from the underlay's address and every UDP run failed (all
// UDP figures 0). It judges no numbers (the machine is shared).
func TestQuickRunKernelRouted(t *testing.T) {
	c, _, r, err := quickRun(t, 4*time.Minute, func(c *Config) { c.Scenarios = []Scenario{FeltHostGW, FeltVXLANDirect} })
	if err != nil {
		t.Fatal(err)
	}
	noLeftovers(t, c)
	u := r.Underlays[0]
	for _, sc := range c.Scenarios {
		s := findScenario(&u, sc)
		if s == nil || len(s.Runs) != 1 || len(s.Errors) != 0 {
			t.Fatalf("%s: %+v", sc, s)
		}
		if e := s.Runs[0].UDPFloodError; e != "" {
			t.Errorf("%s: the UDP flood failed: %s", sc, e)
		}
		checkSample(t, string(sc), sc, s.Median)
	}
}
