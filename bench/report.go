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

// Report is a whole run's result: every run's figures, medians, and the
// medians' ratios to kernel VXLAN on the same underlay.
type Report struct {
	Started   time.Time        `json:"started"`
	Seconds   float64          `json:"seconds"`
	Machine   Machine          `json:"machine"`
	Settings  Settings         `json:"settings"`
	Underlays []UnderlayResult `json:"underlays"`
	Notes     []string         `json:"notes"`
}

// Machine says where the figures come from.
type Machine struct {
	Kernel       string `json:"kernel"`
	CPUs         int    `json:"cpus"`
	LoadAtStart  string `json:"loadavg_start"` // /proc/loadavg: how busy the shared machine was
	LoadAtFinish string `json:"loadavg_finish"`
}

// Settings are the run's parameters.
type Settings struct {
	Repeat    int        `json:"repeat"`
	DurationS int        `json:"duration_s"`
	Pings     int        `json:"pings"`
	Streams   int        `json:"streams"`
	Scenarios []Scenario `json:"scenarios"`
}

// UnderlayResult is one underlay's scenarios, in AllScenarios' order.
type UnderlayResult struct {
	Underlay  Underlay         `json:"underlay"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// ScenarioResult is one scenario on one underlay.
type ScenarioResult struct {
	Scenario Scenario `json:"scenario"`
	Runs     []Sample `json:"runs"`             // successful runs, in order
	Errors   []string `json:"errors,omitempty"` // failed runs
	Median   Sample   `json:"median"`
	// Ratio is median / kernel VXLAN's median for every figure both have
	// (a figure kernel VXLAN measured as 0 has no ratio).
	Ratio map[string]float64 `json:"ratio_to_kernel_vxlan"`
	// PingP50OverKernelUs is median ping p50 minus kernel VXLAN's, in µs
	// (the latency target is an absolute margin, not a ratio).
	PingP50OverKernelUs float64 `json:"ping_p50_over_kernel_us"`
}

const cpuNote = "agent_cpu_s_per_gb: user+system CPU seconds of both felt agents (/proc/<pid>/stat) during the single-stream TCP run, " +
	"per GB received (felt only; the kernel's share of felt's path is not in it). system_cpu_s_per_gb: busy CPU seconds of the " +
	"whole machine (/proc/stat, all CPUs, all processes incl. iperf3 and other users of this shared machine) during the same run, per GB: " +
	"the only figure comparable across felt and the kernel paths, and noisy."

func newReport(c *Config, started time.Time) *Report {
	return &Report{
		Started: started,
		Machine: Machine{Kernel: kernelRelease(), CPUs: runtime.NumCPU(), LoadAtStart: loadavg()},
		Settings: Settings{Repeat: c.Repeat, DurationS: int(c.Duration / time.Second), Pings: c.Pings,
			Streams: c.Streams, Scenarios: c.Scenarios},
		Notes: []string{cpuNote, "medians of each figure taken separately over the runs; ratios are of medians"},
	}
}

// addUnderlay records one underlay's runs and computes medians and ratios.
func (r *Report) addUnderlay(u Underlay, order []Scenario, runs map[Scenario][]Sample, errs map[Scenario][]string) {
	ur := UnderlayResult{Underlay: u}
	for _, sc := range order {
		ur.Scenarios = append(ur.Scenarios, ScenarioResult{Scenario: sc, Runs: runs[sc], Errors: errs[sc], Median: medianSample(runs[sc])})
	}
	var kernel *ScenarioResult
	for i := range ur.Scenarios {
		if ur.Scenarios[i].Scenario == KernelVXLAN && len(ur.Scenarios[i].Runs) > 0 {
			kernel = &ur.Scenarios[i]
		}
	}
	for i := range ur.Scenarios {
		s := &ur.Scenarios[i]
		s.Ratio = map[string]float64{}
		if kernel == nil || len(s.Runs) == 0 {
			continue
		}
		for _, m := range metrics {
			k, v := *m.get(&kernel.Median), *m.get(&s.Median)
			if k != 0 && (v != 0 || s.Scenario == KernelVXLAN) {
				s.Ratio[m.key] = v / k
			}
		}
		s.PingP50OverKernelUs = s.Median.PingP50us - kernel.Median.PingP50us
	}
	r.Underlays = append(r.Underlays, ur)
}

func (r *Report) finish(now time.Time) {
	r.Seconds = now.Sub(r.Started).Seconds()
	r.Machine.LoadAtFinish = loadavg()
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
