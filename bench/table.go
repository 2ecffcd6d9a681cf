package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints one table per underlay: each scenario's medians, with
// the ratio to kernel VXLAN in brackets, and any failed runs below.
func (r *Report) WriteTable(w io.Writer) error {
	st := r.Settings
	fmt.Fprintf(w, "felt bench: medians of %d run(s), %d s per iperf3 run, %d pings, %d TCP streams in the N-stream run; kernel %s, %d CPUs, load %s → %s\n",
		st.Repeat, st.DurationS, st.Pings, st.Streams, r.Machine.Kernel, r.Machine.CPUs, r.Machine.LoadAtStart, r.Machine.LoadAtFinish)
	fmt.Fprintf(w, "(×: ratio to kernel-vxlan on the same underlay; ping Δ: p50 minus kernel-vxlan's)\n")
	for _, u := range r.Underlays {
		fmt.Fprintf(w, "\nunderlay %s\n", u.Underlay)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := []string{"scenario"}
		units := []string{""}
		for _, m := range metrics {
			head = append(head, m.label)
			units = append(units, m.unit)
		}
		head = append(head, "ping Δ", "runs")
		units = append(units, "µs", "")
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		fmt.Fprintln(tw, strings.Join(units, "\t")+"\t")
		for _, s := range u.Scenarios {
			row := []string{string(s.Scenario)}
			for _, m := range metrics {
				v := *m.get(&s.Median)
				cell := "-"
				if len(s.Runs) > 0 && (v != 0 || !m.agent) {
					cell = num(v)
					if q, ok := s.Ratio[m.key]; ok && s.Scenario != KernelVXLAN {
						cell += " (" + num(q) + "×)"
					}
				}
				row = append(row, cell)
			}
			delta := "-"
			if len(s.Runs) > 0 {
				delta = fmt.Sprintf("%+.0f", s.PingP50OverKernelUs)
			}
			row = append(row, delta, fmt.Sprintf("%d/%d", len(s.Runs), len(s.Runs)+len(s.Errors)))
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, s := range u.Scenarios {
			for _, e := range s.Errors {
				fmt.Fprintf(w, "  %s failed: %s\n", s.Scenario, firstLine(e))
			}
		}
	}
	return nil
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
