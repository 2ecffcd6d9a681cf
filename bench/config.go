package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Underlay is how the two hosts' link behaves.
type Underlay string

const (
	// Veth is a veth pair as created: GSO passthrough, the kernel's best case.
	Veth Underlay = "veth"
	// Wire is a veth pair with TSO/GSO/UDP segmentation off and GRO on, so
	// every frame crosses at MTU size as over a real NIC.
	Wire Underlay = "wire"
)

// AllUnderlays is the default, in report order.
var AllUnderlays = []Underlay{Veth, Wire}

// Base is the scenario without its felt flags: felt-udp for felt-udp[--x].
func (s Scenario) Base() Scenario {
	b, _, _ := strings.Cut(string(s), "[")
	return Scenario(b)
}

// FeltFlags are the extra agent flags of a felt variant ("" for none).
func (s Scenario) FeltFlags() string {
	_, f, ok := strings.Cut(string(s), "[")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(f, "]")
}

// Config is one benchmark run.
type Config struct {
	// FeltBin is the felt binary run for etcd, config and the agents.
	FeltBin   string
	Underlays []Underlay // default AllUnderlays
	// Scenarios to measure (base names); the baseline is always added.
	// Default AllScenarios, and FlanneldScenarios with Flanneld.
	Scenarios []Scenario
	// Baseline is the scenario every figure is also given as a ratio to:
	// KernelVXLAN or Bare. Empty chooses kernel-vxlan where the kernel can
	// create vxlan devices, bare otherwise (and on an underlay where
	// kernel-vxlan had no successful run).
	Baseline Scenario
	// Flanneld is a flanneld binary (or a stand-in taking its flags) for the
	// flanneld scenarios.
	Flanneld string
	// FeltFlags adds, per entry, a variant of every felt scenario whose
	// agents get these extra arguments (space-separated; leading NAME=value
	// words are set in the agent's environment instead, GOMAXPROCS=1 say).
	// The plain felt scenarios run too, so one run holds the A/B.
	FeltFlags []string
	// Quick changes the defaults of the zero fields below to 1, 1 s and 20:
	// a smoke run that shows the suite works, not a measurement.
	Quick    bool
	Repeat   int           // runs per scenario; default 3
	Duration time.Duration // per iperf3 and request/response run, whole seconds; default 5 s
	Pings    int           // pings per run, 10 ms apart; default 200
	Streams  int           // parallel TCP streams of the multi-stream run; default 4
	// ProfileDir, if set, gets a CPU profile of every felt agent
	// (felt agent --cpuprofile), named <underlay>-<scenario>-<rep>-<host>.pprof.
	ProfileDir string
	// Name is the stem of the labs' namespaces (at most 10 lower-case
	// letters and digits); default "fb" and the pid.
	Name     string
	Progress io.Writer   // one line per measured scenario; nil for none
	Log      *zap.Logger // nil for none
}

func (c *Config) setDefaults() {
	if len(c.Underlays) == 0 {
		c.Underlays = AllUnderlays
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = AllScenarios
		if c.Flanneld != "" {
			c.Scenarios = append(slices.Clone(c.Scenarios), FlanneldScenarios...)
		}
	}
	base := c.Baseline
	if base == "" {
		base = KernelVXLAN // Run adds bare if the kernel has no vxlan
	}
	if !slices.Contains(c.Scenarios, base) {
		c.Scenarios = append([]Scenario{base}, c.Scenarios...)
	}
	c.Scenarios = withVariants(c.Scenarios, c.FeltFlags)
	def := func(v *int, normal, quick int) {
		if *v == 0 {
			*v = normal
			if c.Quick {
				*v = quick
			}
		}
	}
	def(&c.Repeat, 3, 1)
	def(&c.Pings, 200, 20)
	def(&c.Streams, 4, 4)
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
		if c.Quick {
			c.Duration = time.Second
		}
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// withVariants returns scs in report order (KnownScenarios' order of the
// bases, whatever the input's), each felt scenario followed by one variant
// per felt flags entry. Variants already in scs are kept once.
func withVariants(scs []Scenario, feltFlags []string) []Scenario {
	var out []Scenario
	add := func(s Scenario) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range scs {
		add(s)
		if s.felt() && s.FeltFlags() == "" {
			for _, f := range feltFlags {
				add(variant(s, f))
			}
		}
	}
	order := func(s Scenario) int {
		if i := slices.Index(KnownScenarios, s.Base()); i >= 0 {
			return i
		}
		return len(KnownScenarios)
	}
	slices.SortStableFunc(out, func(a, b Scenario) int { return order(a) - order(b) })
	return out
}

func variant(s Scenario, flags string) Scenario {
	return Scenario(string(s.Base()) + "[" + strings.Join(strings.Fields(flags), " ") + "]")
}

// Validate checks c after filling in defaults.
func (c *Config) Validate() error {
	if err := c.checkFeltFlags(); err != nil {
		return err
	}
	c.setDefaults()
	if c.FeltBin == "" {
		return fmt.Errorf("bench: Config.FeltBin is empty: the felt binary to run is required")
	}
	for _, u := range c.Underlays {
		if !slices.Contains(AllUnderlays, u) {
			return fmt.Errorf("bench: underlay %q: must be one of %s", u, joinNames(AllUnderlays))
		}
	}
	if c.Baseline != "" && c.Baseline != Bare && c.Baseline != KernelVXLAN {
		return fmt.Errorf("bench: baseline %q: must be bare or kernel-vxlan (or empty: kernel-vxlan where the kernel has vxlan, else bare)", c.Baseline)
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(KnownScenarios, s.Base()) || (s.FeltFlags() != "" && !s.felt()) {
			return fmt.Errorf("bench: scenario %q: must be one of %s", s, joinNames(KnownScenarios))
		}
		if s.flanneld() && c.Flanneld == "" {
			return fmt.Errorf("bench: scenario %q: needs a flanneld binary (Config.Flanneld, --flanneld PATH)", s)
		}
	}
	if len(c.FeltFlags) > 0 && !slices.ContainsFunc(c.Scenarios, Scenario.felt) {
		return fmt.Errorf("bench: felt flags %q: no felt scenario to run them with (felt-udp, felt-vxlan, felt-wireguard, ...)", c.FeltFlags)
	}
	if c.Repeat < 1 || c.Repeat > 100 {
		return fmt.Errorf("bench: repeat %d: must be between 1 and 100", c.Repeat)
	}
	if c.Duration < time.Second || c.Duration > 10*time.Minute || c.Duration%time.Second != 0 {
		return fmt.Errorf("bench: duration %s: must be whole seconds between 1s and 10m (iperf3 -t)", c.Duration)
	}
	if c.Pings < 2 || c.Pings > 100000 {
		return fmt.Errorf("bench: pings %d: must be between 2 and 100000", c.Pings)
	}
	if c.Streams < 2 || c.Streams > 128 {
		return fmt.Errorf("bench: streams %d: must be between 2 and 128", c.Streams)
	}
	if c.Name != "" && (!nameOK(c.Name) || len(c.Name) > 10) {
		return fmt.Errorf("bench: name %q: must be 1 to 10 lower-case letters and digits, starting with a letter", c.Name)
	}
	return nil
}

// checkFeltFlags refuses empty and repeated entries: each names a scenario.
func (c *Config) checkFeltFlags() error {
	seen := map[string]bool{}
	for _, f := range c.FeltFlags {
		n := strings.Join(strings.Fields(f), " ")
		if n == "" {
			return fmt.Errorf("bench: felt flags %q: empty (the plain felt scenarios always run)", f)
		}
		if strings.ContainsAny(n, "[]") {
			return fmt.Errorf("bench: felt flags %q: must not hold [ or ] (they delimit the flags in the scenario name)", f)
		}
		if seen[n] {
			return fmt.Errorf("bench: felt flags %q: given twice", f)
		}
		seen[n] = true
	}
	return nil
}

// splitFeltFlags splits a variant's flags into leading NAME=value
// environment settings and the agent's arguments.
func splitFeltFlags(flags string) (env, args []string) {
	f := strings.Fields(flags)
	i := 0
	for ; i < len(f); i++ {
		name, _, ok := strings.Cut(f[i], "=")
		if !ok || !envName(name) {
			break
		}
	}
	return f[:i], f[i:]
}

func envName(s string) bool {
	for i, r := range s {
		if !(r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func nameOK(s string) bool {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// ParseUnderlays parses --underlay: veth, wire or both.
func ParseUnderlays(s string) ([]Underlay, error) {
	switch s {
	case "both", "":
		return AllUnderlays, nil
	case string(Veth), string(Wire):
		return []Underlay{Underlay(s)}, nil
	}
	return nil, fmt.Errorf("underlay %q: must be veth, wire or both", s)
}

// ParseScenarios parses a comma-separated list of scenarios ("" or "all":
// nil, which Config reads as the default).
func ParseScenarios(s string) ([]Scenario, error) {
	if s == "" || s == "all" {
		return nil, nil
	}
	var out []Scenario
	for _, f := range strings.Split(s, ",") {
		sc := Scenario(strings.TrimSpace(f))
		if !slices.Contains(KnownScenarios, sc) {
			return nil, fmt.Errorf("scenario %q: must be one of %s (comma-separated) or all", sc, joinNames(KnownScenarios))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

func joinNames[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// ParseBaseline parses --baseline: auto (or ""), bare or kernel-vxlan.
func ParseBaseline(s string) (Scenario, error) {
	switch s {
	case "", "auto":
		return "", nil
	case string(Bare), string(KernelVXLAN):
		return Scenario(s), nil
	}
	return "", fmt.Errorf("baseline %q: must be auto, bare or kernel-vxlan", s)
}
