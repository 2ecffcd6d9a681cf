package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
)

var scenarioColor = map[Scenario]string{
	Bare: "#9e9e9e", KernelVXLAN: "#1f77b4", FeltUDP: "#ff7f0e", FeltVXLAN: "#2ca02c",
}

// targets are the throughput targets as ratios to kernel VXLAN,
// drawn as red marks over their group.
var targets = map[Underlay]map[string]float64{
	Veth: {"tcp1_gbps": 0.35, "udp64_kpps": 0.9},
	Wire: {"tcp1_gbps": 0.6, "udp64_kpps": 0.9},
}

// chartMetrics are the throughput figures drawn as ratios.
var chartMetrics = []string{"tcp1_gbps", "tcpn_gbps", "udp64_kpps"}

const (
	svgW      = 960
	panelH    = 300
	plotTop   = 50
	plotH     = 220
	ratioX0   = 60
	ratioW    = 580
	pingX0    = 720
	pingW     = 200
	legendTop = 28
)

// WriteSVG draws, per underlay, the throughput medians as ratios to kernel
// VXLAN (bars labelled with the absolute value, target marks in red) and
// the ping p50 medians in µs. Hand-written SVG, no dependencies.
func (r *Report) WriteSVG(w io.Writer) error {
	var b bytes.Buffer
	h := panelH*len(r.Underlays) + 40
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", svgW, h, svgW, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, h)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n",
		esc(fmt.Sprintf("felt bench — medians of %d run(s), kernel %s, %d CPUs (shared machine: noisy)", r.Settings.Repeat, r.Machine.Kernel, r.Machine.CPUs)))
	for i, u := range r.Underlays {
		drawPanel(&b, u, 30+i*panelH)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func drawPanel(b *bytes.Buffer, u UnderlayResult, y0 int) {
	fmt.Fprintf(b, `<g transform="translate(0,%d)">`+"\n", y0)
	fmt.Fprintf(b, `<text x="10" y="16" font-size="13" font-weight="bold">%s</text>`+"\n", esc("underlay: "+string(u.Underlay)))
	// Legend.
	for i, s := range u.Scenarios {
		x := 180 + i*130
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, legendTop-20, scenarioColor[s.Scenario], x+14, legendTop-11, esc(string(s.Scenario)))
	}
	x := 180 + len(u.Scenarios)*130
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="red" stroke-width="2"/><text x="%d" y="%d">target</text>`+"\n",
		x, x+12, legendTop-15, legendTop-15, x+16, legendTop-11)
	n := max(len(u.Scenarios), 1)

	// Ratios to kernel VXLAN.
	top := 1.0
	for _, s := range u.Scenarios {
		for _, k := range chartMetrics {
			top = math.Max(top, s.Ratio[k])
		}
	}
	top = math.Ceil(top*1.15*4) / 4
	yOf := func(v float64) float64 { return plotTop + plotH - v/top*plotH }
	axes(b, ratioX0, ratioW, "ratio to kernel-vxlan (higher is better)")
	for t := 0.0; t <= top+1e-9; t += tick(top) {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			ratioX0, ratioX0+ratioW, yOf(t), yOf(t), ratioX0-4, yOf(t)+4, num(t))
	}
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#1f77b4" stroke-dasharray="4 3"/>`+"\n", ratioX0, ratioX0+ratioW, yOf(1), yOf(1))
	groupW := float64(ratioW) / float64(len(chartMetrics))
	barW := groupW * 0.8 / float64(n)
	for g, key := range chartMetrics {
		gx := float64(ratioX0) + float64(g)*groupW + groupW*0.1
		m := metricByKey(key)
		for i, s := range u.Scenarios {
			q, ok := s.Ratio[key]
			if !ok {
				continue
			}
			x := gx + float64(i)*barW
			fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				x, yOf(q), barW-2, float64(plotTop+plotH)-yOf(q), scenarioColor[s.Scenario],
				esc(fmt.Sprintf("%s %s: %s %s, %s× kernel-vxlan", s.Scenario, m.label, num(*m.get(&s.Median)), m.unit, num(q))))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>`+"\n", x+barW/2-1, yOf(q)-3, esc(num(*m.get(&s.Median))))
		}
		if t, ok := targets[u.Underlay][key]; ok {
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="red" stroke-width="2"><title>%s</title></line>`+"\n",
				gx, gx+groupW*0.8, yOf(t), yOf(t), esc(fmt.Sprintf("target %s× kernel-vxlan", num(t))))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.4, plotTop+plotH+16, esc(m.label+" ("+m.unit+")"))
	}

	// Ping p50, absolute.
	ptop := 1.0
	for _, s := range u.Scenarios {
		ptop = math.Max(ptop, s.Median.PingP50us)
	}
	ptop *= 1.15
	axes(b, pingX0, pingW, "ping p50 µs (lower is better)")
	bw := float64(pingW) * 0.8 / float64(n)
	for i, s := range u.Scenarios {
		if len(s.Runs) == 0 {
			continue
		}
		v := s.Median.PingP50us
		x := float64(pingX0) + float64(pingW)*0.1 + float64(i)*bw
		y := plotTop + plotH - v/ptop*plotH
		fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			x, y, bw-2, float64(plotTop+plotH)-y, scenarioColor[s.Scenario], esc(fmt.Sprintf("%s ping p50 %s µs, p99 %s µs", s.Scenario, num(v), num(s.Median.PingP99us))))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>`+"\n", x+bw/2-1, y-3, esc(num(v)))
	}
	b.WriteString("</g>\n")
}

// axes draws a plot's frame and title.
func axes(b *bytes.Buffer, x0, w int, title string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, plotTop-8, esc(title))
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>`+"\n",
		x0, x0, plotTop, plotTop+plotH, x0, x0+w, plotTop+plotH, plotTop+plotH)
}

// tick is a grid step giving about four to eight lines up to top.
func tick(top float64) float64 {
	for _, t := range []float64{0.25, 0.5, 1, 2, 5, 10} {
		if top/t <= 8 {
			return t
		}
	}
	return top / 4
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
