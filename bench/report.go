package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Report is a whole run's result: every run's figures, min/median/max, and
// the medians' ratios to the baseline (and to kernel VXLAN, and felt's to
// flanneld's) on the same underlay.
type Report struct {
	Started   time.Time        `json:"started"`
	Seconds   float64          `json:"seconds"`
	Machine   Machine          `json:"machine"`
	Settings  Settings         `json:"settings"`
	Underlays []UnderlayResult `json:"underlays"`
	Notes     []string         `json:"notes"`
	// Compare is the new/old table of a run given an older results.json
	// (--compare); set by Report.CompareWith.
	Compare *Comparison `json:"compare,omitempty"`
}

// Machine says where the figures come from.
type Machine struct {
	Kernel       string `json:"kernel"`
	CPUs         int    `json:"cpus"`
	LoadAtStart  string `json:"loadavg_start"` // /proc/loadavg: how busy the shared machine was
	LoadAtFinish string `json:"loadavg_finish"`
	// KernelVXLAN is "yes" when the kernel can create vxlan devices, else
	// why not (the kernel-vxlan and flanneld-vxlan scenarios did not run).
	KernelVXLAN string `json:"kernel_vxlan"`
}

// Settings are the run's parameters.
type Settings struct {
	Repeat    int        `json:"repeat"`
	DurationS int        `json:"duration_s"`
	Pings     int        `json:"pings"`
	Streams   int        `json:"streams"`
	Scenarios []Scenario `json:"scenarios"`
	// Baseline is the baseline the run chose (kernel-vxlan or bare); an
	// underlay may still fall back to bare (UnderlayResult.Baseline).
	Baseline Scenario `json:"baseline"`
	// BaselineAsked is --baseline: auto, bare or kernel-vxlan.
	BaselineAsked string   `json:"baseline_asked"`
	Flanneld      string   `json:"flanneld,omitempty"`
	FeltFlags     []string `json:"felt_flags,omitempty"`
}

// UnderlayResult is one underlay's scenarios, in report order.
type UnderlayResult struct {
	Underlay  Underlay         `json:"underlay"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// Baseline is the scenario the ratio_to_baseline figures divide by
	// ("" if it had no successful run); BaselineNote says why it is not
	// the run's choice, if it is not.
	Baseline     Scenario `json:"baseline"`
	BaselineNote string   `json:"baseline_note,omitempty"`
}

// ScenarioResult is one scenario on one underlay.
type ScenarioResult struct {
	Scenario Scenario `json:"scenario"`
	Runs     []Sample `json:"runs"`             // successful runs, in order
	Errors   []string `json:"errors,omitempty"` // failed runs
	// Skipped says why the scenario did not run at all on this machine.
	Skipped string `json:"skipped,omitempty"`
	Median  Sample `json:"median"`
	Min     Sample `json:"min"`
	Max     Sample `json:"max"`
	// SpreadPct is (max − min) / median in percent per figure measured
	// more than once (percentage points for losses); Noisy lists the
	// figures whose spread is over NoisySpreadPct.
	SpreadPct map[string]float64 `json:"spread_pct,omitempty"`
	Noisy     []string           `json:"noisy,omitempty"`
	// Ratio is median / kernel VXLAN's median for every figure both have
	// (a figure kernel VXLAN measured as 0 has no ratio; none without a
	// kernel-vxlan run).
	Ratio map[string]float64 `json:"ratio_to_kernel_vxlan"`
	// PingP50OverKernelUs is median ping p50 minus kernel VXLAN's, in µs
	// (the latency target is an absolute margin, not a ratio).
	PingP50OverKernelUs float64 `json:"ping_p50_over_kernel_us"`
	// RatioToBaseline and PingP50OverBaselineUs are the same against the
	// underlay's baseline, which the table and the chart show.
	RatioToBaseline       map[string]float64 `json:"ratio_to_baseline"`
	PingP50OverBaselineUs float64            `json:"ping_p50_over_baseline_us"`
	// RatioToFlanneld is, for a felt scenario, median / the median of
	// flanneld with the same backend (felt-udp to flanneld-udp), when
	// that ran.
	RatioToFlanneld map[string]float64 `json:"ratio_to_flanneld,omitempty"`
	// RatioTo is median / the median of each scenario this one is paired
	// with that ran (felt-udp with flanneld-udp, felt-wireguard with
	// felt-udp and wireguard-go; a felt variant as its base), by scenario.
	RatioTo map[Scenario]map[string]float64 `json:"ratio_to,omitempty"`
}

const cpuNote = "agent_cpu_s_per_gb: user+system CPU seconds of both agents (felt's or flanneld's; /proc/<pid>/stat) during the single-stream TCP run, " +
	"per GB received (the kernel's share of their path is not in it). system_cpu_s_per_gb, the headline CPU figure: busy CPU seconds of the " +
	"whole machine (/proc/stat, all CPUs, all processes incl. iperf3 and other users of this shared machine) during the same run, per GB: " +
	"the only figure comparable across felt, flanneld and the kernel paths, and noisy."

const noiseNote = "min, median and max of each figure taken separately over the runs; ratios are of medians; a figure whose spread " +
	"((max-min)/median, or max-min points for a loss) is over 15 % is listed in noisy"

func newReport(c *Config, started time.Time, base Scenario, vxlanErr error) *Report {
	asked := string(c.Baseline)
	if asked == "" {
		asked = "auto"
	}
	kv := "yes"
	if vxlanErr != nil {
		kv = "no: " + firstLine(vxlanErr.Error())
	}
	r := &Report{
		Started: started,
		Machine: Machine{Kernel: kernelRelease(), CPUs: runtime.NumCPU(), LoadAtStart: loadavg(), KernelVXLAN: kv},
		Settings: Settings{Repeat: c.Repeat, DurationS: int(c.Duration / time.Second), Pings: c.Pings,
			Streams: c.Streams, Scenarios: c.Scenarios, Baseline: base, BaselineAsked: asked, Flanneld: c.Flanneld, FeltFlags: c.FeltFlags},
		Notes: []string{cpuNote, noiseNote},
	}
	if vxlanErr != nil && base == Bare {
		r.Notes = append(r.Notes, "this kernel cannot create vxlan devices: kernel-vxlan and flanneld-vxlan did not run and ratios are to bare")
	}
	return r
}

// addUnderlay records one underlay's runs and computes statistics and
// ratios. skip holds the scenarios that could not run at all.
func (r *Report) addUnderlay(u Underlay, order []Scenario, runs map[Scenario][]Sample, errs map[Scenario][]string, skip map[Scenario]string) {
	ur := UnderlayResult{Underlay: u}
	for _, sc := range order {
		s := ScenarioResult{Scenario: sc, Runs: runs[sc], Errors: errs[sc], Skipped: skip[sc]}
		s.Min, s.Median, s.Max, s.SpreadPct, s.Noisy = stats(runs[sc])
		for _, run := range runs[sc] {
			if run.UDPFloodError != "" {
				r.Notes = append(r.Notes, fmt.Sprintf("%s, %s: the 64 B flood (and any paced UDP after it) gave no figures in a run (shown as 0): %s", u, sc, run.UDPFloodError))
				break
			}
		}
		ur.Scenarios = append(ur.Scenarios, s)
	}
	ran := func(sc Scenario) *ScenarioResult {
		for i := range ur.Scenarios {
			if ur.Scenarios[i].Scenario == sc && len(ur.Scenarios[i].Runs) > 0 {
				return &ur.Scenarios[i]
			}
		}
		return nil
	}
	ur.Baseline = r.Settings.Baseline
	base := ran(ur.Baseline)
	if base == nil && ur.Baseline == KernelVXLAN && r.Settings.BaselineAsked == "auto" {
		if bare := ran(Bare); bare != nil {
			ur.BaselineNote = "kernel-vxlan had no successful run on this underlay: ratios are to bare"
			ur.Baseline, base = Bare, bare
		}
	}
	if base == nil {
		ur.BaselineNote = string(ur.Baseline) + " had no successful run on this underlay: no ratios"
		ur.Baseline = ""
	}
	kernel := ran(KernelVXLAN)
	for i := range ur.Scenarios {
		s := &ur.Scenarios[i]
		s.Ratio, s.RatioToBaseline = map[string]float64{}, map[string]float64{}
		if len(s.Runs) == 0 {
			continue
		}
		if kernel != nil {
			s.Ratio = ratios(s, kernel)
			s.PingP50OverKernelUs = s.Median.PingP50us - kernel.Median.PingP50us
		}
		if base != nil {
			s.RatioToBaseline = ratios(s, base)
			s.PingP50OverBaselineUs = s.Median.PingP50us - base.Median.PingP50us
		}
		for _, v := range s.Scenario.vs() {
			other := ran(v)
			if other == nil {
				continue
			}
			if s.RatioTo == nil {
				s.RatioTo = map[Scenario]map[string]float64{}
			}
			s.RatioTo[v] = ratios(s, other)
			if v.flanneld() && s.RatioToFlanneld == nil {
				s.RatioToFlanneld = s.RatioTo[v]
			}
		}
	}
	r.Underlays = append(r.Underlays, ur)
}

// ratios is s's median over base's for every figure base measured as
// non-zero and s measured (or s is base).
func ratios(s, base *ScenarioResult) map[string]float64 {
	out := map[string]float64{}
	for _, m := range metrics {
		b, v := *m.get(&base.Median), *m.get(&s.Median)
		if b != 0 && (v != 0 || s == base) {
			out[m.key] = v / b
		}
	}
	return out
}

func (r *Report) finish(now time.Time) {
	r.Seconds = now.Sub(r.Started).Seconds()
	r.Machine.LoadAtFinish = loadavg()
}

// LoadReport reads a results.json written by WriteFiles (of this version or
// an older one).
func LoadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: not a felt bench results.json: %w", path, err)
	}
	if len(r.Underlays) == 0 {
		return nil, fmt.Errorf("bench: %s: not a felt bench results.json: no underlays", path)
	}
	// A file from before ratio_to has felt's ratios to flanneld alone: felt-vxlan's
	// to flanneld-vxlan, felt-udp's to flanneld-udp.
	for i := range r.Underlays {
		for j := range r.Underlays[i].Scenarios {
			s := &r.Underlays[i].Scenarios[j]
			if len(s.RatioToFlanneld) == 0 || s.RatioTo != nil {
				continue
			}
			fl := FlanneldUDP
			if s.Scenario.Base() == FeltVXLAN {
				fl = FlanneldVXLAN
			}
			s.RatioTo = map[Scenario]map[string]float64{fl: s.RatioToFlanneld}
		}
	}
	// A file from before baselines: its ratios are to kernel-vxlan.
	for i := range r.Underlays {
		u := &r.Underlays[i]
		if u.Baseline != "" || r.Settings.Baseline != "" {
			continue
		}
		u.Baseline = KernelVXLAN
		for j := range u.Scenarios {
			if s := &u.Scenarios[j]; len(s.RatioToBaseline) == 0 {
				s.RatioToBaseline = s.Ratio
			}
		}
	}
	return &r, nil
}

// Failed counts the runs that failed.
func (r *Report) Failed() int {
	n := 0
	for _, u := range r.Underlays {
		for _, s := range u.Scenarios {
			n += len(s.Errors)
		}
	}
	return n
}

// Files written by WriteFiles into the output directory.
const (
	JSONFile  = "results.json"
	SVGFile   = "chart.svg"
	TableFile = "results.txt"
)

// WriteFiles writes the report as JSON, an SVG bar chart and the text table
// into dir (created if missing) and returns the paths written.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: output directory: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bench: encode report: %w", err)
	}
	var table, svg strings.Builder
	if err := r.WriteTable(&table); err != nil {
		return nil, err
	}
	if err := r.WriteSVG(&svg); err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range []struct {
		name string
		data []byte
	}{{JSONFile, append(js, '\n')}, {SVGFile, []byte(svg.String())}, {TableFile, []byte(table.String())}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return paths, fmt.Errorf("bench: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
