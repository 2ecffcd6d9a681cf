package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{FeltBin: "felt", Scenarios: []Scenario{FeltVXLAN, Bare}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Repeat != 3 || c.Duration != 5*time.Second || c.Pings != 200 || c.Streams != 4 {
		t.Errorf("defaults: repeat %d duration %v pings %d streams %d", c.Repeat, c.Duration, c.Pings, c.Streams)
	}
	// kernel-vxlan added (the yardstick), report order whatever the input's.
	if want := []Scenario{Bare, KernelVXLAN, FeltVXLAN}; !slices.Equal(c.Scenarios, want) {
		t.Errorf("scenarios %v, want %v", c.Scenarios, want)
	}
	if !slices.Equal(c.Underlays, AllUnderlays) {
		t.Errorf("underlays %v", c.Underlays)
	}
	q := Config{FeltBin: "felt", Quick: true, Repeat: 2}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	if q.Repeat != 2 || q.Duration != time.Second || q.Pings != 20 {
		t.Errorf("quick: repeat %d (given 2) duration %v pings %d", q.Repeat, q.Duration, q.Pings)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string // the field, value and rule should all show
	}{
		{Config{}, "FeltBin"},
		{Config{FeltBin: "f", Underlays: []Underlay{"nic"}}, `underlay "nic": must be one of veth, wire`},
		{Config{FeltBin: "f", Scenarios: []Scenario{"wg"}}, `scenario "wg": must be one of`},
		{Config{FeltBin: "f", Repeat: -1}, "repeat -1: must be between 1 and 100"},
		{Config{FeltBin: "f", Duration: 1500 * time.Millisecond}, "duration 1.5s: must be whole seconds"},
		{Config{FeltBin: "f", Pings: 1}, "pings 1: must be between 2"},
		{Config{FeltBin: "f", Streams: 1}, "streams 1: must be between 2"},
		{Config{FeltBin: "f", Name: "Bad-Name"}, `name "Bad-Name": must be 1 to 10 lower-case`},
		{Config{FeltBin: "f", Name: "abcdefghijk"}, "name"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.c, err, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for in, want := range map[string][]Underlay{"both": AllUnderlays, "": AllUnderlays, "veth": {Veth}, "wire": {Wire}} {
		got, err := ParseUnderlays(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseUnderlays(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseUnderlays("nic"); err == nil || !strings.Contains(err.Error(), `"nic"`) {
		t.Errorf("ParseUnderlays(nic): %v", err)
	}
	got, err := ParseScenarios(" felt-udp,bare,felt-udp")
	if err != nil || !slices.Equal(got, []Scenario{FeltUDP, Bare}) {
		t.Errorf("ParseScenarios = %v, %v", got, err)
	}
	if got, _ := ParseScenarios("all"); !slices.Equal(got, AllScenarios) {
		t.Errorf("all = %v", got)
	}
	if _, err := ParseScenarios("bare,flannel"); err == nil || !strings.Contains(err.Error(), `"flannel"`) {
		t.Errorf("ParseScenarios(bare,flannel): %v", err)
	}
}

func TestRotate(t *testing.T) {
	s := AllScenarios
	seen := map[Scenario]bool{}
	for r := range s {
		o := rotate(s, r)
		if len(o) != len(s) {
			t.Fatalf("rotate %d: %v", r, o)
		}
		seen[o[0]] = true
		for _, sc := range s {
			if !slices.Contains(o, sc) {
				t.Fatalf("rotate %d lost %s: %v", r, sc, o)
			}
		}
	}
	if len(seen) != len(s) {
		t.Errorf("every scenario should run first once in %d repetitions: %v", len(s), seen)
	}
	if !slices.Equal(s, AllScenarios) || &rotate(s, 0)[0] == &s[0] {
		t.Error("rotate must not share or change its input")
	}
}
