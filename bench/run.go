package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/netns"
)

// ErrRunsFailed is returned (wrapped) by Run when some runs failed; the
// report is complete otherwise and lists each failure.
var ErrRunsFailed = errors.New("some benchmark runs failed")

// tools are the programs Run drives.
var tools = []string{"ip", "bridge", "ethtool", "iperf3", "ping"}

// Run measures every scenario of c on every underlay, c.Repeat times, and
// returns the report. It needs root (or netns.ReexecRootless). A run that
// fails is recorded in the report and the others go on; the error then
// wraps ErrRunsFailed. Cancelling ctx stops it and removes its labs.
func Run(ctx context.Context, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if netns.Rootless() && !netns.InRootless() {
		return nil, fmt.Errorf("bench: needs root for network namespaces, TUN and vxlan devices (or run it through netns.ReexecRootless)")
	}
	need := append(tools, c.FeltBin)
	if c.Flanneld != "" {
		need = append(need, c.Flanneld)
	}
	for _, t := range need {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("bench: %s not found (Debian: apt-get install iproute2 ethtool iperf3 iputils-ping): %w", t, err)
		}
	}
	if c.Flanneld != "" {
		// Started in the hosts by ip netns exec: a relative path must not
		// depend on how that resolves it.
		p, err := exec.LookPath(c.Flanneld)
		if err == nil {
			c.Flanneld, err = filepath.Abs(p)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: flanneld %q: %w", c.Flanneld, err)
		}
	}
	if c.ProfileDir != "" {
		if err := os.MkdirAll(c.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("bench: profile directory: %w", err)
		}
	}
	stem := c.Name
	if stem == "" {
		stem = "fb" + strconv.Itoa(os.Getpid()%100000)
	}
	start := time.Now()
	var rep *Report
	var p *progress
	var skip map[Scenario]string
	failed := 0
	for ui, u := range c.Underlays {
		fmt.Fprintf(c.Progress, "building the %s lab...\n", u)
		l, err := newUnderlayLab(ctx, &c, u, stem)
		if err != nil {
			return nil, err
		}
		if ui == 0 {
			// One kernel for every underlay: probe it once.
			vxlanErr := l.probeVXLAN(ctx)
			if ctx.Err() != nil {
				return nil, errors.Join(ctx.Err(), l.close())
			}
			var base Scenario
			base, c.Scenarios, skip, err = plan(&c, vxlanErr, lookTool)
			if err != nil {
				return nil, errors.Join(err, l.close())
			}
			if vxlanErr != nil {
				fmt.Fprintf(c.Progress, "this kernel cannot create vxlan devices (%s): %s not run, ratios are to %s\n",
					firstLine(vxlanErr.Error()), joinNames(slices.DeleteFunc(slices.Sorted(maps.Keys(skip)), func(s Scenario) bool { return !s.needsVXLAN() })), base)
			}
			for _, sc := range c.Scenarios {
				if why, ok := skip[sc]; ok && !sc.needsVXLAN() {
					fmt.Fprintf(c.Progress, "%s %s\n", sc, why)
				}
			}
			rep = newReport(&c, start, base, vxlanErr)
			p = &progress{c: &c, start: start, total: len(c.Underlays) * c.Repeat * (len(c.Scenarios) - len(skip))}
		}
		runs, errs := map[Scenario][]Sample{}, map[Scenario][]string{}
		for r := 0; r < c.Repeat; r++ {
			for _, sc := range rotate(c.Scenarios, r) {
				if _, ok := skip[sc]; ok {
					continue
				}
				s, err := l.runScenario(ctx, &c, sc, r)
				if ctx.Err() != nil {
					return nil, errors.Join(ctx.Err(), l.close())
				}
				p.step(u, r, sc, s, err)
				if err != nil {
					failed++
					c.Log.Warn("benchmark run failed", zap.String("underlay", string(u)), zap.String("scenario", string(sc)), zap.Error(err))
					errs[sc] = append(errs[sc], err.Error())
					continue
				}
				runs[sc] = append(runs[sc], s)
			}
		}
		if err := l.close(); err != nil {
			c.Log.Warn("lab cleanup", zap.Error(err))
		}
		rep.addUnderlay(u, c.Scenarios, runs, errs, skip)
	}
	rep.finish(time.Now())
	if failed > 0 {
		return rep, fmt.Errorf("bench: %w: %d of %d", ErrRunsFailed, failed, p.total)
	}
	return rep, nil
}

// lookTool is nil if the program name is on PATH, else why not. Tests
// replace it to run the suite as on a machine without wg.
var lookTool = func(name string) error {
	_, err := exec.LookPath(name)
	return err
}

// plan settles what a run measures on this machine, given whether its
// kernel can create vxlan devices (vxlanErr nil) or not and whether the
// programs a scenario needs are there (look): the baseline, the scenarios
// in report order, and the scenarios that cannot run here with the reason.
// Without vxlan an automatic baseline is bare (added if not asked for); an
// explicit kernel-vxlan baseline is an error.
func plan(c *Config, vxlanErr error, look func(string) error) (base Scenario, scs []Scenario, skip map[Scenario]string, err error) {
	skip = map[Scenario]string{}
	scs = c.Scenarios
	for _, sc := range scs {
		for _, t := range sc.needsTools() {
			if err := look(t); err != nil {
				skip[sc] = fmt.Sprintf("not run: %s not found (Debian: apt-get install wireguard-go wireguard-tools): %v", t, err)
				break
			}
		}
	}
	base = c.Baseline
	if vxlanErr == nil {
		if base == "" {
			base = KernelVXLAN
		}
		return base, scs, skip, nil
	}
	if base == KernelVXLAN {
		return "", nil, nil, fmt.Errorf("bench: baseline kernel-vxlan: this kernel cannot create vxlan devices (%s); use --baseline bare", firstLine(vxlanErr.Error()))
	}
	if base == "" {
		base = Bare
		if !slices.Contains(scs, Bare) {
			scs = withVariants(append([]Scenario{Bare}, scs...), nil)
		}
	}
	for _, sc := range scs {
		if sc.needsVXLAN() {
			skip[sc] = "not run: this kernel cannot create vxlan devices (" + firstLine(vxlanErr.Error()) + ")"
		}
	}
	return base, scs, skip, nil
}

// rotate starts repetition r at scenario r, so no scenario always runs
// right after the same one or first on a freshly built lab.
func rotate(s []Scenario, r int) []Scenario {
	k := r % len(s)
	return append(append([]Scenario{}, s[k:]...), s[:k]...)
}

// progress prints one line per measured scenario.
type progress struct {
	c     *Config
	start time.Time
	total int
	done  int
}

func (p *progress) step(u Underlay, r int, sc Scenario, s Sample, err error) {
	p.done++
	el := time.Since(p.start).Round(time.Second)
	prefix := fmt.Sprintf("[%3d/%d %8s] %-4s rep %d/%d %-16s", p.done, p.total, el, u, r+1, p.c.Repeat, sc)
	if err != nil {
		fmt.Fprintf(p.c.Progress, "%s FAILED: %s\n", prefix, firstLine(err.Error()))
		return
	}
	fmt.Fprintf(p.c.Progress, "%s tcp1 %s Gbit/s  tcp%d %s Gbit/s  sys CPU %s s/GB  udp64 %s kpps (%s%% loss; paced 200k: %s%%)  ping p50 %s µs  RR 1 B %s tps p50 %s µs\n",
		prefix, num(s.TCP1Gbps), p.c.Streams, num(s.TCPNGbps), num(s.SystemCPUPerGB), num(s.UDPKpps), num(s.UDPLossPct), num(s.UDP200kLossPct),
		num(s.PingP50us), num(s.RR1C1TPS), num(s.RR1C1P50us))
}
