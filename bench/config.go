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

// Scenario is one data path between the two hosts.
type Scenario string

const (
	Bare        Scenario = "bare"         // underlay addresses directly: the ceiling
	KernelVXLAN Scenario = "kernel-vxlan" // flannel.1 as flanneld sets it up: the yardstick
	FeltUDP     Scenario = "felt-udp"     // felt agents, flannel udp backend
	FeltVXLAN   Scenario = "felt-vxlan"   // felt agents, flannel vxlan backend
)

// AllUnderlays and AllScenarios are the defaults, in report order.
var (
	AllUnderlays = []Underlay{Veth, Wire}
	AllScenarios = []Scenario{Bare, KernelVXLAN, FeltUDP, FeltVXLAN}
)

// Config is one benchmark run.
type Config struct {
	// FeltBin is the felt binary run for etcd, config and the agents.
	FeltBin   string
	Underlays []Underlay // default AllUnderlays
	// Scenarios to measure; kernel-vxlan is always added, as every ratio
	// is taken against it. Default AllScenarios.
	Scenarios []Scenario
	// Quick changes the defaults of the zero fields below to 1, 1 s and 20:
	// a smoke run that shows the suite works, not a measurement.
	Quick    bool
	Repeat   int           // runs per scenario; default 3
	Duration time.Duration // per iperf3 run, whole seconds; default 5 s
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
	}
	if !slices.Contains(c.Scenarios, KernelVXLAN) {
		c.Scenarios = append([]Scenario{KernelVXLAN}, c.Scenarios...)
	}
	// Report order is AllScenarios' order, whatever the flag's order.
	c.Scenarios = slices.Clone(c.Scenarios)
	slices.SortStableFunc(c.Scenarios, func(a, b Scenario) int {
		return slices.Index(AllScenarios, a) - slices.Index(AllScenarios, b)
	})
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

// Validate checks c after filling in defaults.
func (c *Config) Validate() error {
	c.setDefaults()
	if c.FeltBin == "" {
		return fmt.Errorf("bench: Config.FeltBin is empty: the felt binary to run is required")
	}
	for _, u := range c.Underlays {
		if !slices.Contains(AllUnderlays, u) {
			return fmt.Errorf("bench: underlay %q: must be one of %s", u, joinNames(AllUnderlays))
		}
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			return fmt.Errorf("bench: scenario %q: must be one of %s", s, joinNames(AllScenarios))
		}
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
// every scenario).
func ParseScenarios(s string) ([]Scenario, error) {
	if s == "" || s == "all" {
		return AllScenarios, nil
	}
	var out []Scenario
	for _, f := range strings.Split(s, ",") {
		sc := Scenario(strings.TrimSpace(f))
		if !slices.Contains(AllScenarios, sc) {
			return nil, fmt.Errorf("scenario %q: must be one of %s (comma-separated) or all", sc, joinNames(AllScenarios))
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
