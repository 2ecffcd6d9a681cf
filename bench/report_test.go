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
	"testing"
	"time"
)

func sample(tcp1, udp, p50 float64) Sample {
	return Sample{TCP1Gbps: tcp1, TCPNGbps: 2 * tcp1, UDPKpps: udp, UDPLossPct: 1, PingP50us: p50, PingP99us: 2 * p50, SystemCPUPerGB: 1}
}

func testReport(t *testing.T) *Report {
	t.Helper()
	c := Config{FeltBin: "felt", Repeat: 3}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newReport(&c, time.Unix(1e9, 0))
	runs := map[Scenario][]Sample{
		Bare:        {sample(20, 100, 40), sample(22, 110, 45), sample(18, 90, 50)},
		KernelVXLAN: {sample(10, 60, 90), sample(12, 70, 80), sample(8, 50, 100)},
		FeltUDP:     {sample(4, 54, 150), sample(3, 30, 140), sample(5, 60, 130)},
		FeltVXLAN:   {sample(3, 66, 120)},
	}
	for i := range runs[FeltUDP] {
		runs[FeltUDP][i].AgentCPUPerGB = float64(i + 1)
	}
	r.addUnderlay(Veth, c.Scenarios, runs, map[Scenario][]string{FeltVXLAN: {"agent in fb1h0 exited\nlog..."}})
	r.addUnderlay(Wire, c.Scenarios, map[Scenario][]Sample{KernelVXLAN: {sample(5, 60, 90)}}, nil)
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
	for _, want := range []string{"underlay veth", "underlay wire", "felt-udp", "4.00 (0.400×)", "felt-vxlan failed: agent in fb1h0 exited", "1/2"} {
		if !bytes.Contains(table, []byte(want)) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// checkFiles checks that dir holds a JSON report equal to r and an SVG
// that parses as XML and draws a bar per measured ratio.
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
	bars := 0
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
			}
		}
	}
	wantBars := 0
	for _, u := range r.Underlays {
		for _, s := range u.Scenarios {
			for _, k := range chartMetrics {
				if _, ok := s.Ratio[k]; ok {
					wantBars++
				}
			}
			if len(s.Runs) > 0 {
				wantBars++ // ping
			}
		}
	}
	if bars != wantBars {
		t.Errorf("chart.svg has %d bars, want %d", bars, wantBars)
	}
}
