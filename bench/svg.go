package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// scenarioColor keeps each named scenario's colour from chart to chart;
// felt flag variants take the extra colours in turn.
var (
	scenarioColor = map[Scenario]string{
		Bare: "#9e9e9e", KernelVXLAN: "#1f77b4", FeltUDP: "#ff7f0e", FeltVXLAN: "#2ca02c",
		FlanneldUDP: "#d62728", FlanneldVXLAN: "#9467bd", FlanneldHostGW: "#8c564b",
		FeltWireGuard: "#ffd92f", WireGuardGo: "#6b4c9a", FeltHostGW: "#66c2a5", FeltVXLANDirect: "#a6d854",
		KernelVXLAN6: "#08519c", FeltVXLAN6: "#006d2c",
	}
	extraColors = []string{"#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896"}
)

// colors maps the underlay's scenarios to their colours.
func colors(u UnderlayResult) map[Scenario]string {
	out := map[Scenario]string{}
	extra := 0
	for _, s := range u.Scenarios {
		if c, ok := scenarioColor[s.Scenario]; ok {
			out[s.Scenario] = c
			continue
		}
		out[s.Scenario] = extraColors[extra%len(extraColors)]
		extra++
	}
	return out
}

// targets are the packet-path targets as ratios to kernel VXLAN (see
// docs/performance.md, "Targets"), drawn as red marks over their group when
// kernel-vxlan is the baseline.
var targets = map[Underlay]map[string]float64{
	Veth: {"tcp1_gbps": 0.5, "udp64_kpps": 0.8, "rr1_c1_tps": 0.5},
	Wire: {"tcp1_gbps": 0.6, "udp64_kpps": 0.8, "rr1_c1_tps": 0.5},
}

// The chart's plots, per underlay: ratios to the baseline (higher is
// better), system CPU per GB, latencies and the paced UDP loss (absolute,
// lower is better).
var (
	chartMetrics   = []string{"tcp1_gbps", "tcpn_gbps", "udp64_kpps", "rr1_c1_tps", "rr1k_c16_tps"}
	cpuMetrics     = []string{"system_cpu_s_per_gb"}
	latencyMetrics = []string{"ping_p50_us", "rr1_c1_p50_us", "rr1_c1_p99_us", "rr1k_c16_p99_us"}
	pacedMetrics   = []string{"udp64_50k_loss_pct", "udp64_100k_loss_pct", "udp64_200k_loss_pct"}
)

// chartLabels are shorter group labels where the plot is narrow.
var chartLabels = map[string]string{
	"udp64_50k_loss_pct": "50 kpps", "udp64_100k_loss_pct": "100 kpps", "udp64_200k_loss_pct": "200 kpps",
	"system_cpu_s_per_gb": "TCP 1 stream",
}

const (
	svgW    = 1000
	rowH    = 290
	legendH = 40
	plotTop = 28 // within a row
	plotH   = 200
	leftX0  = 60
	leftW   = 600
	rightX0 = 740
	rightW  = 230
)

// plot is one set of grouped bars.
type plot struct {
	x0, w  int
	y0     int // top of the row
	title  string
	keys   []string
	ratios bool // bars are RatioToBaseline; else medians
	colors map[Scenario]string
	log    bool // logarithmic axis (latencies span µs to ms)
	base   Scenario
	under  Underlay
	cmp    *Comparison
}

// WriteSVG draws, per underlay, the throughput and request/response rates
// as ratios to the baseline (bars labelled with the absolute value, target
// marks in red when the baseline is kernel-vxlan), system CPU per GB, the
// latencies and the paced UDP loss. With a comparison, the older run's
// figures are dashed outlines beside each bar. Hand-written SVG, no
// dependencies.
func (r *Report) WriteSVG(w io.Writer) error {
	var b bytes.Buffer
	h := 40 + len(r.Underlays)*(legendH+2*rowH)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgW, h, svgW, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, h)
	title := fmt.Sprintf("felt bench — medians of %d run(s) × %d s, kernel %s, %d CPUs, load %s → %s",
		r.Settings.Repeat, r.Settings.DurationS, r.Machine.Kernel, r.Machine.CPUs, firstField(r.Machine.LoadAtStart), firstField(r.Machine.LoadAtFinish))
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", esc(title))
	if r.Compare != nil {
		fmt.Fprintf(&b, `<text x="10" y="34">%s</text>`+"\n", esc("dashed outlines: "+r.Compare.OldFile+" (started "+r.Compare.OldStarted.UTC().Format("2006-01-02 15:04")+")"))
	}
	for i, u := range r.Underlays {
		drawUnderlay(&b, r, u, 40+i*(legendH+2*rowH))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func drawUnderlay(b *bytes.Buffer, r *Report, u UnderlayResult, y0 int) {
	fmt.Fprintf(b, `<g transform="translate(0,%d)">`+"\n", y0)
	head := "underlay: " + string(u.Underlay)
	if u.Baseline == "" {
		head += " — no baseline: " + u.BaselineNote
	} else if u.Baseline != KernelVXLAN {
		head += " — ratios to " + string(u.Baseline)
		if r.Machine.KernelVXLAN != "yes" && r.Machine.KernelVXLAN != "" {
			head += " (this kernel has no vxlan)"
		} else if u.BaselineNote != "" {
			head += " (" + u.BaselineNote + ")"
		}
	}
	fmt.Fprintf(b, `<text x="10" y="14" font-size="13" font-weight="bold">%s</text>`+"\n", esc(head))
	scColors := colors(u)
	// Legend, wrapping after six entries.
	for i, s := range u.Scenarios {
		x, y := 10+(i%6)*150, 20+(i/6)*13
		label := string(s.Scenario)
		if s.Skipped != "" {
			label += " (not run)"
		} else if len(s.Runs) == 0 {
			label += " (failed)"
		}
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y, scColors[s.Scenario], x+14, y+9, esc(trim(label, 26)))
	}
	if u.Baseline == KernelVXLAN {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="red" stroke-width="2"/><text x="%d" y="%d">target</text>`+"\n",
			svgW-80, svgW-68, 10, 10, svgW-64, 14)
	}
	base := string(u.Baseline)
	if base == "" {
		base = "baseline"
	}
	row1, row2 := legendH, legendH+rowH
	p := plot{y0: row1, base: u.Baseline, under: u.Underlay, cmp: r.Compare, colors: scColors}
	p.x0, p.w, p.keys, p.ratios, p.title = leftX0, leftW, chartMetrics, true, "ratio to "+base+" (higher is better)"
	p.draw(b, u)
	p.x0, p.w, p.keys, p.ratios, p.title = rightX0, rightW, cpuMetrics, false, "system CPU per GB, s (lower is better)"
	p.draw(b, u)
	p.y0 = row2
	p.x0, p.w, p.keys, p.log, p.title = leftX0, leftW, latencyMetrics, true, "latency, µs, log scale (lower is better)"
	p.draw(b, u)
	p.x0, p.w, p.keys, p.log, p.title = rightX0, rightW, pacedMetrics, false, "paced 64 B UDP: loss, %"
	p.draw(b, u)
	b.WriteString("</g>\n")
}

// value is what p draws for scenario s and figure key: a ratio or the
// median, and whether there is one.
func (p *plot) value(s *ScenarioResult, key string) (float64, bool) {
	if len(s.Runs) == 0 {
		return 0, false
	}
	if p.ratios {
		q, ok := s.RatioToBaseline[key]
		return q, ok
	}
	return *metricByKey(key).get(&s.Median), true
}

// old is the older run's figure for s and key, if compared and measured.
func (p *plot) old(s *ScenarioResult, key string) (float64, bool) {
	c := p.cmp.compared(p.under, s.Scenario)
	if c == nil {
		return 0, false
	}
	if p.ratios {
		q, ok := c.OldRatioToBaseline[key]
		return q, ok
	}
	v := *metricByKey(key).get(&c.OldMedian)
	return v, v != 0 // 0: the old run did not measure it (an older suite)
}

func (p *plot) draw(b *bytes.Buffer, u UnderlayResult) {
	top := 0.0
	for i := range u.Scenarios {
		for _, k := range p.keys {
			v, _ := p.value(&u.Scenarios[i], k)
			o, _ := p.old(&u.Scenarios[i], k)
			top = math.Max(top, math.Max(v, o))
		}
	}
	bottom := p.y0 + plotTop + plotH
	var yOf func(float64) float64
	var ticks []float64
	switch {
	case p.log:
		// Decades from 1 µs up to the one above the largest figure; a
		// figure under 1 sits on the axis.
		top = math.Pow(10, math.Max(1, math.Ceil(math.Log10(math.Max(top, 1)*1.3))))
		yOf = func(v float64) float64 {
			return float64(bottom) - math.Log10(math.Max(v, 1))/math.Log10(top)*plotH
		}
		for t := 1.0; t <= top*1.001; t *= 10 {
			ticks = append(ticks, t)
		}
	default:
		if p.ratios {
			top = math.Ceil(math.Max(top, 1)*1.15*4) / 4
		} else {
			top = niceTop(top * 1.15)
		}
		yOf = func(v float64) float64 { return float64(bottom) - v/top*plotH }
		for t := 0.0; t <= top+1e-9; t += tick(top) {
			ticks = append(ticks, t)
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", p.x0, p.y0+plotTop-8, esc(p.title))
	for _, t := range ticks {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			p.x0, p.x0+p.w, yOf(t), yOf(t), p.x0-4, yOf(t)+4, tickLabel(t, p.log))
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n",
		p.x0, p.x0, p.y0+plotTop, bottom, p.x0, p.x0+p.w, bottom, bottom)
	if p.ratios {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#1f77b4" stroke-dasharray="4 3"/>`+"\n", p.x0, p.x0+p.w, yOf(1), yOf(1))
	}
	n := max(len(u.Scenarios), 1)
	var olds []string // drawn last, over the bars
	groupW := float64(p.w) / float64(len(p.keys))
	barW := groupW * 0.8 / float64(n)
	for g, key := range p.keys {
		gx := float64(p.x0) + float64(g)*groupW + groupW*0.1
		m := metricByKey(key)
		for i := range u.Scenarios {
			s := &u.Scenarios[i]
			x := gx + float64(i)*barW
			// The older run's figure, drawn over the bar as a dashed outline.
			if o, ok := p.old(s, key); ok {
				olds = append(olds, fmt.Sprintf(`<rect class="old" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="black" stroke-width="1.2" stroke-dasharray="4 2"><title>%s</title></rect>`+"\n",
					x+1, yOf(o), barW-4, float64(bottom)-yOf(o), esc(fmt.Sprintf("%s %s, old run: %s", s.Scenario, m.label, num(o)))))
			}
			v, ok := p.value(s, key)
			if !ok {
				continue
			}
			abs := *m.get(&s.Median)
			tip := fmt.Sprintf("%s %s: %s %s", s.Scenario, m.label, num(abs), m.unit)
			if p.ratios {
				tip += fmt.Sprintf(", %s× %s", num(v), p.base)
			}
			fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.85"><title>%s</title></rect>`+"\n",
				x, yOf(v), barW-2, float64(bottom)-yOf(v), p.colors[s.Scenario], esc(tip))
			// Labels stand upright over narrow bars.
			if barW >= 26 {
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="8">%s</text>`+"\n", x+barW/2-1, yOf(v)-3, esc(short(abs)))
			} else {
				lx, ly := x+barW/2+2, yOf(v)-3
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="8" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", lx, ly, lx, ly, esc(short(abs)))
			}
		}
		if t, ok := targets[p.under][key]; ok && p.ratios && p.base == KernelVXLAN {
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="red" stroke-width="2"><title>%s</title></line>`+"\n",
				gx, gx+groupW*0.8, yOf(t), yOf(t), esc(fmt.Sprintf("target %s× kernel-vxlan", num(t))))
		}
		label := m.label
		if l, ok := chartLabels[key]; ok {
			label = l
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.4, bottom+14, esc(label))
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", gx+groupW*0.4, bottom+26, esc(m.unit))
	}
	for _, o := range olds {
		b.WriteString(o)
	}
}

// tick is a grid step giving about four to eight lines up to top.
func tick(top float64) float64 {
	for _, t := range []float64{0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 1e5, 2e5, 5e5, 1e6} {
		if top/t <= 8 {
			return t
		}
	}
	return top / 4
}

// tickLabel is an axis label: decades as 1, 10, 100, 1k, 10k on a log axis.
func tickLabel(t float64, log bool) string {
	if !log {
		return num(t)
	}
	if t >= 1000 {
		return strconv.FormatFloat(t/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(t, 'f', -1, 64)
}

// niceTop rounds v up to a multiple of its tick (1 for nothing measured).
func niceTop(v float64) float64 {
	if v <= 0 {
		return 1
	}
	t := tick(v)
	return math.Ceil(v/t) * t
}

// short prints a bar's label in at most about four characters.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return num(v/1e6) + "M"
	case a >= 1e4:
		return num(v/1e3) + "k"
	}
	return num(v)
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

func trim(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func metricByKey(key string) metric {
	for _, m := range metrics {
		if m.key == key {
			return m
		}
	}
	panic("bench: unknown metric " + key)
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
