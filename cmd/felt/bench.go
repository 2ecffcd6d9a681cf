package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/bench"
	"github.com/feltnet/felt/netns"
)

// cmdBench is `felt bench`: it runs the benchmark suite (bench.Run), prints
// its table and writes JSON, SVG and the table into --out. As a non-root
// user it re-runs itself in a user namespace.
func cmdBench(fs *flag.FlagSet) action {
	repeat := fs.Int("repeat", 0, "runs per scenario; medians are reported (default 3, 1 with --quick)")
	var duration time.Duration
	fs.Var(secondsFlag{&duration}, "duration", "length of each iperf3 and request/response run, whole `seconds`: 3 or 3s (default 5s, 1s with --quick)")
	underlay := fs.String("underlay", "both", "underlay: veth (GSO passthrough), wire (wire-like offloads) or both")
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios: "+scenarioNames(bench.KnownScenarios)+"; or all, which is "+scenarioNames(bench.AllScenarios)+
		" (the baseline is always run; the flanneld ones need --flanneld; wireguard-go needs Debian's wireguard-go and wg)")
	baseline := fs.String("baseline", "auto", "what ratios are to: kernel-vxlan, bare, or auto (kernel-vxlan where the kernel has vxlan, else bare)")
	flanneld := fs.String("flanneld", "", "flanneld binary: adds flanneld-udp, flanneld-vxlan and flanneld-host-gw on the same etcd and hosts")
	var feltFlags repeatFlag
	fs.Var(&feltFlags, "felt-flags", "extra `flags` for felt agent: adds felt-udp[flags] and so on for every felt scenario, beside the plain ones; leading NAME=value words go into the agent's environment; repeatable")
	from := fs.String("from", "", "results.json of an earlier run: write its table and chart (and --compare's) into --out without running anything")
	compare := fs.String("compare", "", "results.json of an earlier run: adds a new/old table, and the old figures to the chart")
	out := fs.String("out", "bench-results", "directory for results.json, chart.svg and results.txt")
	quick := fs.Bool("quick", false, "a short smoke run: shows the suite works, measures little")
	pings := fs.Int("pings", 0, "pings per run, 10 ms apart (default 200, 20 with --quick)")
	streams := fs.Int("streams", 4, "TCP streams of the multi-stream run")
	profile := fs.String("profile", "", "directory for CPU profiles of every felt agent (go tool pprof)")
	feltBin := fs.String("felt", "", "felt binary to benchmark (default: this one)")
	return func(ctx context.Context, e *env, args []string) error {
		us, err := bench.ParseUnderlays(*underlay)
		if err != nil {
			return usageErr("--underlay: %v", err)
		}
		scs, err := bench.ParseScenarios(*scenarios)
		if err != nil {
			return usageErr("--scenarios: %v", err)
		}
		base, err := bench.ParseBaseline(*baseline)
		if err != nil {
			return usageErr("--baseline: %v", err)
		}
		var old *bench.Report
		if *compare != "" {
			if old, err = bench.LoadReport(*compare); err != nil {
				return usageErr("--compare: %v", err)
			}
		}
		if *from != "" {
			rep, err := bench.LoadReport(*from)
			if err != nil {
				return usageErr("--from: %v", err)
			}
			return writeReport(e, rep, old, *compare, *out, nil)
		}
		if duration%time.Second != 0 || duration < 0 {
			return usageErr("--duration %s: must be whole seconds (iperf3 -t)", duration)
		}
		if *repeat < 0 || *pings < 0 {
			return usageErr("--repeat %d, --pings %d: must not be negative", *repeat, *pings)
		}
		bin := *feltBin
		if bin == "" {
			if bin, err = os.Executable(); err != nil {
				return fmt.Errorf("find the felt binary: %w (give --felt)", err)
			}
		}
		cfg := bench.Config{
			FeltBin: bin, Underlays: us, Scenarios: scs, Baseline: base, Flanneld: *flanneld, FeltFlags: feltFlags, Quick: *quick, Repeat: *repeat, Duration: duration,
			Pings: *pings, Streams: *streams, ProfileDir: *profile, Progress: e.stderr, Log: e.log,
		}
		if err := cfg.Validate(); err != nil {
			return usageErr("%v", err)
		}
		if netns.Rootless() && !netns.InRootless() {
			return netns.ReexecRootless(ctx, append([]string{"bench"}, args...))
		}
		rep, runErr := bench.Run(ctx, cfg)
		if rep == nil {
			return runErr
		}
		return writeReport(e, rep, old, *compare, *out, runErr)
	}
}

// writeReport prints the table of rep (compared with old, if given) and
// writes its files into out; runErr is the run's own error, kept.
func writeReport(e *env, rep, old *bench.Report, oldFile, out string, runErr error) error {
	if old != nil {
		rep.CompareWith(old, oldFile)
	}
	fmt.Fprintln(e.stdout)
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	paths, err := rep.WriteFiles(out)
	for _, p := range paths {
		fmt.Fprintf(e.stdout, "wrote %s\n", p)
	}
	return errors.Join(runErr, err)
}

func scenarioNames(scs []bench.Scenario) string {
	s := make([]string, len(scs))
	for i, sc := range scs {
		s[i] = string(sc)
	}
	return strings.Join(s, ", ")
}

// secondsFlag is a duration flag that also takes a bare number of seconds
// (--duration 3), as iperf3 -t does.
type secondsFlag struct{ d *time.Duration }

func (f secondsFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return ""
	}
	return f.d.String()
}

func (f secondsFlag) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		*f.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q: must be whole seconds, such as 3 or 3s", v)
	}
	*f.d = d
	return nil
}

// repeatFlag is a repeatable string flag, each value kept whole (commas
// and spaces included).
type repeatFlag []string

func (r *repeatFlag) String() string     { return strings.Join(*r, " | ") }
func (r *repeatFlag) Set(v string) error { *r = append(*r, v); return nil }
