package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// column is one cell of a table row: the figures keys, joined with " / ",
// the first followed by its ratio to the baseline when ratio is set.
type column struct {
	label, unit string
	keys        []string
	ratio       bool
}

// tableSection is one table per underlay.
type tableSection struct {
	title string
	cols  []column
}

func col(label, unit string, ratio bool, keys ...string) column {
	return column{label, unit, keys, ratio}
}

var sections = []tableSection{
	{"headline", []column{
		col("TCP 1 stream", "Gbit/s", true, "tcp1_gbps"),
		col("TCP N streams", "Gbit/s", true, "tcpn_gbps"),
		col("system CPU", "s/GB", true, "system_cpu_s_per_gb"),
		col("RR 1 B ×1", "tps", true, "rr1_c1_tps"),
		col("RR 1 B ×1 p50/p99", "µs", false, "rr1_c1_p50_us", "rr1_c1_p99_us"),
		col("ping p50", "µs", true, "ping_p50_us"),
	}},
	{"request/response: TCP, 1 B or 1 KiB each way, 1 or 16 connections (like netperf TCP_RR)", []column{
		col("1 B ×1", "tps", true, "rr1_c1_tps"), col("p50/p99", "µs", false, "rr1_c1_p50_us", "rr1_c1_p99_us"),
		col("1 KiB ×1", "tps", true, "rr1k_c1_tps"), col("p50/p99", "µs", false, "rr1k_c1_p50_us", "rr1k_c1_p99_us"),
		col("1 B ×16", "tps", true, "rr1_c16_tps"), col("p50/p99", "µs", false, "rr1_c16_p50_us", "rr1_c16_p99_us"),
		col("1 KiB ×16", "tps", true, "rr1k_c16_tps"), col("p50/p99", "µs", false, "rr1k_c16_p50_us", "rr1k_c16_p99_us"),
	}},
	{"UDP 64 B: a flood (-b 0) and paced at an offered 50, 100, 200 kpps", []column{
		col("flood rx", "kpps", true, "udp64_kpps"), col("flood loss", "%", false, "udp64_loss_pct"),
		col("50k sent/rx", "kpps", false, "udp64_50k_tx_kpps", "udp64_50k_rx_kpps"), col("50k loss", "%", false, "udp64_50k_loss_pct"),
		col("100k sent/rx", "kpps", false, "udp64_100k_tx_kpps", "udp64_100k_rx_kpps"), col("100k loss", "%", false, "udp64_100k_loss_pct"),
		col("200k sent/rx", "kpps", false, "udp64_200k_tx_kpps", "udp64_200k_rx_kpps"), col("200k loss", "%", false, "udp64_200k_loss_pct"),
	}},
	{"more", []column{
		col("ping p99", "µs", true, "ping_p99_us"),
		col("ping 1ms p50", "µs", true, "ping_busy_p50_us"),
		col("agent CPU", "s/GB", false, "agent_cpu_s_per_gb"),
		col("allocs", "/pkt", false, "agent_allocs_per_packet"),
	}},
}

// pairCols and compareCols are the figures of the scenario ÷ vs and the
// new ÷ old tables.
var (
	pairCols    = []string{"tcp1_gbps", "tcpn_gbps", "system_cpu_s_per_gb", "agent_cpu_s_per_gb", "udp64_kpps", "rr1_c1_tps", "rr1k_c16_tps", "rr1_c1_p99_us", "ping_p50_us"}
	compareCols = []string{"tcp1_gbps", "tcpn_gbps", "system_cpu_s_per_gb", "udp64_kpps", "udp64_200k_loss_pct", "rr1_c1_tps", "rr1k_c16_tps", "rr1_c1_p50_us", "ping_p50_us"}
)

// WriteTable prints, per underlay, one table per section: each scenario's
// medians with the ratio to the underlay's baseline in brackets (~ marks a
// noisy figure), then failures, skipped scenarios and noisy figures with
// their min/median/max, the paired scenarios' ratios, and the comparison
// with an older run if there is one.
func (r *Report) WriteTable(w io.Writer) error {
	st := r.Settings
	fmt.Fprintf(w, "felt bench: medians of %d run(s), %d s per iperf3 and request/response run, %d pings, %d TCP streams in the N-stream run; kernel %s, %d CPUs, load %s → %s\n",
		st.Repeat, st.DurationS, st.Pings, st.Streams, r.Machine.Kernel, r.Machine.CPUs, r.Machine.LoadAtStart, r.Machine.LoadAtFinish)
	if kv := r.Machine.KernelVXLAN; kv != "" && kv != "yes" {
		fmt.Fprintf(w, "this kernel cannot create vxlan devices (%s): kernel-vxlan and flanneld-vxlan did not run\n", strings.TrimPrefix(kv, "no: "))
	}
	fmt.Fprintf(w, "(×: ratio to the baseline on the same underlay; ~: spread over %d %% across runs; ping Δ: p50 minus the baseline's)\n", NoisySpreadPct)
	for _, u := range r.Underlays {
		base := "no baseline"
		if u.Baseline != "" {
			base = "ratios to " + string(u.Baseline)
		}
		fmt.Fprintf(w, "\nunderlay %s: %s", u.Underlay, base)
		if u.BaselineNote != "" {
			fmt.Fprintf(w, " (%s)", u.BaselineNote)
		}
		fmt.Fprintln(w)
		for i, sec := range sections {
			fmt.Fprintf(w, "%s\n", sec.title)
			extra := i == 0 // ping Δ and runs
			if err := writeSection(w, u, sec, extra); err != nil {
				return err
			}
		}
		for _, s := range u.Scenarios {
			if s.Skipped != "" {
				fmt.Fprintf(w, "  %s %s\n", s.Scenario, s.Skipped)
			}
			for _, e := range s.Errors {
				fmt.Fprintf(w, "  %s failed: %s\n", s.Scenario, firstLine(e))
			}
		}
		writeNoisy(w, u)
		if err := writePairs(w, u); err != nil {
			return err
		}
	}
	return r.writeCompare(w)
}

func writeSection(w io.Writer, u UnderlayResult, sec tableSection, extra bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head, units := []string{"scenario"}, []string{""}
	for _, c := range sec.cols {
		head = append(head, c.label)
		units = append(units, c.unit)
	}
	if extra {
		head = append(head, "ping Δ", "runs")
		units = append(units, "µs", "")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	fmt.Fprintln(tw, strings.Join(units, "\t")+"\t")
	for _, s := range u.Scenarios {
		row := []string{string(s.Scenario)}
		for _, c := range sec.cols {
			row = append(row, cell(&s, c, u.Baseline))
		}
		if extra {
			delta := "-"
			if len(s.Runs) > 0 && u.Baseline != "" {
				delta = fmt.Sprintf("%+.0f", s.PingP50OverBaselineUs)
			}
			runs := fmt.Sprintf("%d/%d", len(s.Runs), len(s.Runs)+len(s.Errors))
			if s.Skipped != "" {
				runs = "not run"
			}
			row = append(row, delta, runs)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}

// cell formats one column of one scenario: "-" for an unmeasured figure.
func cell(s *ScenarioResult, c column, baseline Scenario) string {
	if len(s.Runs) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range c.keys {
		m := metricByKey(k)
		v := *m.get(&s.Median)
		if v == 0 && m.agent {
			return "-"
		}
		p := num(v)
		if slices.Contains(s.Noisy, k) {
			p += "~"
		}
		parts = append(parts, p)
	}
	out := strings.Join(parts, " / ")
	if q, ok := s.RatioToBaseline[c.keys[0]]; ok && c.ratio && s.Scenario != baseline {
		out += " (" + num(q) + "×)"
	}
	return out
}

// writeNoisy lists the figures flagged as noisy with min/median/max.
func writeNoisy(w io.Writer, u UnderlayResult) {
	first := true
	for _, s := range u.Scenarios {
		for _, k := range s.Noisy {
			if first {
				fmt.Fprintf(w, "noisy (spread over %d %%; min / median / max):\n", NoisySpreadPct)
				first = false
			}
			m := metricByKey(k)
			sp := fmt.Sprintf("%s %%", num(s.SpreadPct[k]))
			if m.lossMetric() {
				sp = num(s.SpreadPct[k]) + " points"
			}
			fmt.Fprintf(w, "  %s %s: %s / %s / %s %s (%s)\n", s.Scenario, m.label,
				num(*m.get(&s.Min)), num(*m.get(&s.Median)), num(*m.get(&s.Max)), m.unit, sp)
		}
	}
}

// writePairs prints each scenario's ratios to those it is paired with:
// felt's to flanneld with the same backend, felt-wireguard's to felt-udp and
// to wireguard-go, felt-vxlan6's to kernel-vxlan6.
func writePairs(w io.Writer, u UnderlayResult) error {
	if !slices.ContainsFunc(u.Scenarios, func(s ScenarioResult) bool { return len(s.RatioTo) > 0 }) {
		return nil
	}
	fmt.Fprintln(w, "scenario ÷ vs (medians; >1 is the scenario's figure being higher): felt ÷ flanneld with the same backend, felt-wireguard ÷ felt-udp and ÷ wireguard-go, felt-vxlan6 ÷ kernel-vxlan6")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"scenario", "vs"}
	for _, k := range pairCols {
		head = append(head, metricByKey(k).label)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, s := range u.Scenarios {
		for _, v := range u.Scenarios { // in report order
			q, ok := s.RatioTo[v.Scenario]
			if !ok {
				continue
			}
			row := []string{string(s.Scenario), string(v.Scenario)}
			for _, k := range pairCols {
				row = append(row, ratioCell(q, k))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	return tw.Flush()
}

// writeCompare prints new ÷ old per underlay and scenario.
func (r *Report) writeCompare(w io.Writer) error {
	c := r.Compare
	if c == nil {
		return nil
	}
	fmt.Fprintf(w, "\nnew ÷ old: this run against %s (started %s, load %s → %s)\n", c.OldFile,
		c.OldStarted.UTC().Format(time.RFC3339), c.OldMachine.LoadAtStart, c.OldMachine.LoadAtFinish)
	if len(c.Underlays) == 0 {
		fmt.Fprintln(w, "  no underlay and scenario measured in both runs")
	}
	for _, cu := range c.Underlays {
		fmt.Fprintf(w, "underlay %s\n", cu.Underlay)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := []string{"scenario"}
		for _, k := range compareCols {
			head = append(head, metricByKey(k).label)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, s := range cu.Scenarios {
			row := []string{string(s.Scenario)}
			for _, k := range compareCols {
				row = append(row, ratioCell(s.NewOverOld, k))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func ratioCell(m map[string]float64, k string) string {
	if q, ok := m[k]; ok {
		return num(q) + "×"
	}
	return "-"
}

// num prints three significant digits, without exponents for our ranges.
func num(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a != 0 && a < 0.01:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
