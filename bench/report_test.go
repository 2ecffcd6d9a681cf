package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func sample(tcp1, udp, p50 float64) Sample {
	s := Sample{TCP1Gbps: tcp1, TCPNGbps: 2 * tcp1, UDPKpps: udp, UDPLossPct: 1, PingP50us: p50, PingP99us: 2 * p50, SystemCPUPerGB: 1}
	for i, t := range rrTests {
		*t.tps(&s), *t.p50(&s), *t.p99(&s) = 1e6/p50*float64(t.conns), p50+float64(i), 2*p50+float64(i)
	}
	for _, l := range pacedLoads {
		*l.tx(&s), *l.rx(&s), *l.loss(&s) = float64(l.kpps), float64(l.kpps)*0.99, 1
	}
	return s
}

func testReport(t *testing.T) *Report {
	t.Helper()
	c := Config{FeltBin: "felt", Repeat: 3, Scenarios: []Scenario{Bare, KernelVXLAN, FeltUDP, FeltVXLAN}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newReport(&c, time.Unix(1e9, 0), KernelVXLAN, nil)
	runs := map[Scenario][]Sample{
		Bare:        {sample(20, 100, 40), sample(22, 110, 45), sample(18, 90, 50)},
		KernelVXLAN: {sample(10, 60, 90), sample(12, 70, 80), sample(8, 50, 100)},
		FeltUDP:     {sample(4, 54, 150), sample(3, 30, 140), sample(5, 60, 130)},
		FeltVXLAN:   {sample(3, 66, 120)},
	}
	for i := range runs[FeltUDP] {
		runs[FeltUDP][i].AgentCPUPerGB = float64(i + 1)
	}
	r.addUnderlay(Veth, c.Scenarios, runs, map[Scenario][]string{FeltVXLAN: {"agent in fb1h0 exited\nlog..."}}, nil)
	r.addUnderlay(Wire, c.Scenarios, map[Scenario][]Sample{KernelVXLAN: {sample(5, 60, 90)}}, nil, nil)
	r.finish(time.Unix(1e9+30, 0))
	return r
}

func TestReportMediansAndRatios(t *testing.T) {
	r := testReport(t)
	if r.Seconds != 30 || len(r.Underlays) != 2 {
		t.Fatalf("seconds %g, %d underlays", r.Seconds, len(r.Underlays))
	}
	veth := r.Underlays[0].Scenarios
	if len(veth) != 4 || veth[1].Scenario != KernelVXLAN {
		t.Fatalf("veth scenarios %+v", veth)
	}
	k, u := veth[1], veth[2]
	if k.Median.TCP1Gbps != 10 || k.Median.PingP50us != 90 || u.Median.TCP1Gbps != 4 || u.Median.UDPKpps != 54 {
		t.Fatalf("medians: kernel %+v felt-udp %+v", k.Median, u.Median)
	}
	for key, want := range map[string]float64{"tcp1_gbps": 0.4, "udp64_kpps": 0.9, "ping_p50_us": 140.0 / 90} {
		if got := u.Ratio[key]; math.Abs(got-want) > 1e-12 {
			t.Errorf("felt-udp ratio %s = %g, want %g", key, got, want)
		}
	}
	if k.Ratio["tcp1_gbps"] != 1 {
		t.Errorf("kernel's own ratio %v", k.Ratio)
	}
	if _, ok := u.Ratio["agent_cpu_s_per_gb"]; ok {
		t.Error("agent CPU has no kernel counterpart: no ratio")
	}
	if u.PingP50OverKernelUs != 50 || u.Median.AgentCPUPerGB != 2 {
		t.Errorf("ping Δ %g (want 50), agent cpu %g (want 2)", u.PingP50OverKernelUs, u.Median.AgentCPUPerGB)
	}
	if r.Failed() != 1 || len(veth[3].Errors) != 1 || len(veth[3].Runs) != 1 {
		t.Errorf("failures: %d, felt-vxlan %+v", r.Failed(), veth[3])
	}
	if w := r.Underlays[1].Scenarios; len(w[0].Runs) != 0 || len(w[0].Ratio) != 0 || w[1].Ratio["tcp1_gbps"] != 1 {
		t.Errorf("wire: a scenario without runs has no ratios: %+v", w)
	}
}

func TestReportFiles(t *testing.T) {
	r := testReport(t)
	dir := filepath.Join(t.TempDir(), "out")
	paths, err := r.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("wrote %v", paths)
	}
	checkFiles(t, dir, r)
	table, _ := os.ReadFile(filepath.Join(dir, TableFile))
	for _, want := range []string{"underlay veth: ratios to kernel-vxlan", "underlay wire", "felt-udp", "4.00~ (0.400×)", "felt-vxlan failed: agent in fb1h0 exited", "1/2",
		"request/response", "1 B ×16", "paced at an offered 50, 100, 200 kpps", "noisy (spread over 15 %",
		"felt-udp TCP 1 stream: 3.00 / 4.00 / 5.00 Gbit/s (50.0 %)"} {
		if !bytes.Contains(table, []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// checkFiles checks that dir holds a JSON report equal to r and an SVG
// that parses as XML and draws a bar per measured ratio.
// writeAndCheckFiles writes r's files into a fresh directory, checks them
// (checkFiles) and returns the directory.
func writeAndCheckFiles(t *testing.T, r *Report) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, r)
	return dir
}

func checkFiles(t *testing.T, dir string, r *Report) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	want, _ := json.Marshal(r)
	got, _ := json.Marshal(&back)
	if !bytes.Equal(got, want) {
		t.Errorf("results.json does not round-trip:\n%s\nvs\n%s", got, want)
	}
	svg, err := os.ReadFile(filepath.Join(dir, SVGFile))
	if err != nil {
		t.Fatal(err)
	}
	bars, olds := 0, 0
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart.svg is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "class" && a.Value == "bar" {
					bars++
				}
				if a.Name.Local == "class" && a.Value == "old" {
					olds++
				}
			}
		}
	}
	wantBars, wantOlds := 0, 0
	absolute := len(cpuMetrics) + len(latencyMetrics) + len(pacedMetrics)
	for _, u := range r.Underlays {
		for _, s := range u.Scenarios {
			for _, k := range chartMetrics {
				if _, ok := s.RatioToBaseline[k]; ok {
					wantBars++
				}
			}
			if len(s.Runs) > 0 {
				wantBars += absolute
			}
			if c := r.Compare.compared(u.Underlay, s.Scenario); c != nil {
				for _, k := range chartMetrics {
					if _, ok := c.OldRatioToBaseline[k]; ok {
						wantOlds++
					}
				}
				for _, k := range slices.Concat(cpuMetrics, latencyMetrics, pacedMetrics) {
					if *metricByKey(k).get(&c.OldMedian) != 0 {
						wantOlds++
					}
				}
			}
		}
	}
	if bars != wantBars || olds != wantOlds {
		t.Errorf("chart.svg has %d bars and %d old outlines, want %d and %d", bars, olds, wantBars, wantOlds)
	}
}

// Spread is (max-min)/median, in points for a loss; a figure over 15 % is
// flagged; one run has min = median = max and no spread.
func TestStatsSpread(t *testing.T) {
	runs := []Sample{{TCP1Gbps: 9, TCPNGbps: 10, UDPLossPct: 1}, {TCP1Gbps: 10, TCPNGbps: 10.5, UDPLossPct: 5}, {TCP1Gbps: 11, TCPNGbps: 11, UDPLossPct: 30}}
	lo, med, hi, spread, noisy := stats(runs)
	if lo.TCP1Gbps != 9 || med.TCP1Gbps != 10 || hi.TCP1Gbps != 11 || med.TCPNGbps != 10.5 {
		t.Errorf("min %g median %g max %g", lo.TCP1Gbps, med.TCP1Gbps, hi.TCP1Gbps)
	}
	if math.Abs(spread["tcp1_gbps"]-20) > 1e-9 || math.Abs(spread["tcpn_gbps"]-100.0/10.5) > 1e-9 || spread["udp64_loss_pct"] != 29 {
		t.Errorf("spread %v", spread)
	}
	if _, ok := spread["ping_p50_us"]; ok {
		t.Error("a figure measured as 0 has no spread")
	}
	if !slices.Equal(noisy, []string{"tcp1_gbps", "udp64_loss_pct"}) {
		t.Errorf("noisy %v, want tcp1 (20 %%) and the loss (29 points), not tcpn (9.5 %%)", noisy)
	}
	// Exactly 15 % is not over.
	if _, _, _, _, noisy := stats([]Sample{{TCP1Gbps: 100}, {TCP1Gbps: 115}, {TCP1Gbps: 100}}); len(noisy) != 0 {
		t.Errorf("15 %% flagged: %v", noisy)
	}
	lo, med, hi, spread, noisy = stats(runs[:1])
	if lo != med || hi != med || len(spread) != 0 || len(noisy) != 0 {
		t.Errorf("one run: %v %v %v", lo, hi, spread)
	}
}

// On a kernel without vxlan the report says so, the skipped scenarios show
// as not run, and every ratio is to bare, in the table and the chart.
func TestReportWithoutVXLAN(t *testing.T) {
	c := Config{FeltBin: "felt", Repeat: 1, Scenarios: []Scenario{FeltUDP}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	vxlanErr := errors.New("ip link add fbprobe0 type vxlan: Error: Unknown device type.")
	base, scs, skip, err := plan(&c, vxlanErr, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	c.Scenarios = scs
	r := newReport(&c, time.Unix(1e9, 0), base, vxlanErr)
	r.addUnderlay(Veth, scs, map[Scenario][]Sample{Bare: {sample(20, 100, 40)}, FeltUDP: {sample(5, 50, 140)}}, nil, skip)
	r.finish(time.Unix(1e9+5, 0))
	u := r.Underlays[0]
	if u.Baseline != Bare || r.Settings.Baseline != Bare || r.Settings.BaselineAsked != "auto" || !strings.HasPrefix(r.Machine.KernelVXLAN, "no: ") {
		t.Fatalf("baseline %q / %q, kernel vxlan %q", u.Baseline, r.Settings.Baseline, r.Machine.KernelVXLAN)
	}
	felt := findScenario(&u, FeltUDP)
	if felt.RatioToBaseline["tcp1_gbps"] != 0.25 || len(felt.Ratio) != 0 || felt.PingP50OverBaselineUs != 100 {
		t.Errorf("felt-udp: to bare %v, to kernel %v, Δ %g", felt.RatioToBaseline, felt.Ratio, felt.PingP50OverBaselineUs)
	}
	if k := findScenario(&u, KernelVXLAN); k.Skipped == "" || len(k.Runs) != 0 || len(k.Errors) != 0 {
		t.Errorf("kernel-vxlan: %+v", k)
	}
	if r.Failed() != 0 {
		t.Errorf("a skipped scenario counted as failed: %d", r.Failed())
	}
	var table, svg bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"this kernel cannot create vxlan devices (ip link add fbprobe0", "underlay veth: ratios to bare",
		"5.00 (0.250×)", "not run", "kernel-vxlan not run: this kernel cannot create vxlan devices"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ratios to bare (this kernel has no vxlan)", "ratio to bare (higher is better)", "kernel-vxlan (not run)"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	writeAndCheckFiles(t, r)
}

// An automatic kernel-vxlan baseline that failed on an underlay falls
// back to bare there; an explicit one does not.
func TestReportBaselineFallback(t *testing.T) {
	for _, asked := range []Scenario{"", KernelVXLAN} {
		c := Config{FeltBin: "felt", Repeat: 1, Baseline: asked, Scenarios: []Scenario{Bare, FeltUDP}}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		r := newReport(&c, time.Unix(1e9, 0), KernelVXLAN, nil)
		r.addUnderlay(Wire, c.Scenarios, map[Scenario][]Sample{Bare: {sample(20, 100, 40)}, FeltUDP: {sample(5, 50, 140)}},
			map[Scenario][]string{KernelVXLAN: {"kernel-vxlan could not start: ..."}}, nil)
		u := r.Underlays[0]
		felt := findScenario(&u, FeltUDP)
		if asked == "" && (u.Baseline != Bare || !strings.Contains(u.BaselineNote, "ratios are to bare") || felt.RatioToBaseline["tcp1_gbps"] != 0.25) {
			t.Errorf("auto: baseline %q (%s), ratios %v", u.Baseline, u.BaselineNote, felt.RatioToBaseline)
		}
		if asked == KernelVXLAN && (u.Baseline != "" || !strings.Contains(u.BaselineNote, "no ratios") || len(felt.RatioToBaseline) != 0) {
			t.Errorf("explicit: baseline %q (%s), ratios %v", u.Baseline, u.BaselineNote, felt.RatioToBaseline)
		}
	}
}

// felt's figures are also given as ratios to flanneld with the same
// backend, variants included.
func TestReportFeltToFlanneld(t *testing.T) {
	c := Config{FeltBin: "felt", Flanneld: "flanneld", Repeat: 1, FeltFlags: []string{"GOMAXPROCS=1"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newReport(&c, time.Unix(1e9, 0), KernelVXLAN, nil)
	r.addUnderlay(Veth, c.Scenarios, map[Scenario][]Sample{
		KernelVXLAN: {sample(10, 100, 40)}, FeltUDP: {sample(5, 50, 140)}, "felt-udp[GOMAXPROCS=1]": {sample(6, 50, 140)},
		FeltVXLAN: {sample(4, 50, 140)}, FlanneldUDP: {sample(2, 25, 200)},
	}, map[Scenario][]string{FlanneldHostGW: {"flanneld-host-gw could not start: ... felt speaks udp and vxlan"}}, nil)
	u := r.Underlays[0]
	for sc, want := range map[Scenario]float64{FeltUDP: 2.5, "felt-udp[GOMAXPROCS=1]": 3} {
		if got := findScenario(&u, sc).RatioToFlanneld["tcp1_gbps"]; got != want {
			t.Errorf("%s ÷ flanneld-udp = %g, want %g", sc, got, want)
		}
	}
	if len(findScenario(&u, FeltVXLAN).RatioToFlanneld) != 0 {
		t.Error("felt-vxlan has a ratio to flanneld-vxlan, which did not run")
	}
	var table bytes.Buffer
	r.WriteTable(&table)
	for _, want := range []string{"felt ÷ flanneld", "felt-udp[GOMAXPROCS=1]  flanneld-udp", "3.00×", "flanneld-host-gw failed: flanneld-host-gw could not start"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// felt-wireguard's figures are also given as ratios to felt-udp and to
// wireguard-go; felt-wireguard gets no ratio to flanneld; a scenario that
// could not run (felt-host-gw, paired with flanneld-host-gw) gives none; the
// table lists each pair; a results.json from before ratio_to reads its
// ratios to flanneld as pairs.
func TestReportPairs(t *testing.T) {
	c := Config{FeltBin: "felt", Repeat: 1, Scenarios: []Scenario{FeltUDP, FeltWireGuard, WireGuardGo, FeltHostGW}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newReport(&c, time.Unix(1e9, 0), KernelVXLAN, nil)
	wgo := sample(0.3, 20, 300)
	wgo.AgentCPUPerGB = 8
	fwg := sample(0.6, 30, 200)
	fwg.AgentCPUPerGB = 4
	r.addUnderlay(Wire, c.Scenarios, map[Scenario][]Sample{
		KernelVXLAN: {sample(10, 100, 40)}, FeltUDP: {sample(2, 50, 140)}, FeltWireGuard: {fwg}, WireGuardGo: {wgo},
	}, map[Scenario][]string{FeltHostGW: {`felt-host-gw could not start: felt agent exited: ... Backend.Type "host-gw": felt speaks only "udp", "vxlan" and "wireguard"`}}, nil)
	u := r.Underlays[0]
	w := findScenario(&u, FeltWireGuard)
	if got := w.RatioTo[FeltUDP]["tcp1_gbps"]; got != 0.3 {
		t.Errorf("felt-wireguard ÷ felt-udp = %g, want 0.3", got)
	}
	if got := w.RatioTo[WireGuardGo]["tcp1_gbps"]; got != 2 {
		t.Errorf("felt-wireguard ÷ wireguard-go = %g, want 2", got)
	}
	if got := w.RatioTo[WireGuardGo]["agent_cpu_s_per_gb"]; got != 0.5 {
		t.Errorf("felt-wireguard ÷ wireguard-go agent CPU = %g, want 0.5", got)
	}
	if len(w.RatioToFlanneld) != 0 || len(findScenario(&u, FeltUDP).RatioTo) != 0 || len(findScenario(&u, FeltHostGW).RatioTo) != 0 {
		t.Errorf("ratios without a flanneld or a run: %v %v", w.RatioToFlanneld, findScenario(&u, FeltUDP).RatioTo)
	}
	var table bytes.Buffer
	r.WriteTable(&table)
	for _, want := range []string{"scenario ÷ vs", "felt-host-gw failed: felt-host-gw could not start: felt agent exited"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(table.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			rows[strings.Join(f[:3], " ")] = true
		}
	}
	for _, want := range []string{"felt-wireguard felt-udp 0.300×", "felt-wireguard wireguard-go 2.00×"} {
		if !rows[want] {
			t.Errorf("table has no pair row %q:\n%s", want, table.String())
		}
	}

	old := `{"underlays":[{"underlay":"wire","scenarios":[{"scenario":"felt-vxlan","runs":[{"tcp1_gbps":4}],"median":{"tcp1_gbps":4},
		"ratio_to_flanneld":{"tcp1_gbps":2}}]}]}`
	f := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(f, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := LoadReport(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Underlays[0].Scenarios[0].RatioTo; got[FlanneldVXLAN]["tcp1_gbps"] != 2 || len(got) != 1 {
		t.Errorf("old felt-vxlan's pairs: %v", got)
	}
}

// --compare: new/old per figure of the scenarios both runs have; an old
// results.json from before baselines is read too (its kernel ratios stand
// in for the baseline ratios).
func TestCompare(t *testing.T) {
	dir := t.TempDir()
	oldR := testReport(t)
	for i := range oldR.Underlays {
		for j := range oldR.Underlays[i].Scenarios {
			oldR.Underlays[i].Scenarios[j].RatioToBaseline = nil // as written before baselines
		}
	}
	if _, err := oldR.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	old, err := LoadReport(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	r := testReport(t)
	r.Underlays = r.Underlays[:1] // veth only
	fu := findScenario(&r.Underlays[0], FeltUDP)
	fu.Median.TCP1Gbps *= 1.5
	r.CompareWith(old, "old.json")
	c := r.Compare
	if len(c.Underlays) != 1 || c.OldFile != "old.json" || !c.OldStarted.Equal(old.Started) {
		t.Fatalf("comparison %+v", c)
	}
	scs := c.Underlays[0].Scenarios
	if len(scs) != 4 { // felt-vxlan has one run in both
		t.Fatalf("%d scenarios compared: %+v", len(scs), scs)
	}
	cu := c.compared(Veth, FeltUDP)
	if cu == nil || math.Abs(cu.NewOverOld["tcp1_gbps"]-1.5) > 1e-12 || cu.NewOverOld["udp64_kpps"] != 1 || cu.OldRatioToBaseline["tcp1_gbps"] != 0.4 {
		t.Errorf("felt-udp: %+v", cu)
	}
	if _, ok := cu.NewOverOld["agent_allocs_per_packet"]; ok {
		t.Error("a figure the old run measured as 0 has no new/old")
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "new ÷ old: this run against old.json") || !strings.Contains(table.String(), "1.50×") {
		t.Errorf("table:\n%s", table.String())
	}
	out := filepath.Join(t.TempDir(), "new")
	if _, err := r.WriteFiles(out); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, out, r)

	for _, bad := range []struct{ data, want string }{{"{", "not a felt bench results.json"}, {`{"underlays":[]}`, "no underlays"}} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(bad.data), 0o644)
		if _, err := LoadReport(p); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadReport(%s): %v", bad.data, err)
		}
	}
	if _, err := LoadReport(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}
