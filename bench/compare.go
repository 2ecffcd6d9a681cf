package bench

import (
	"time"
)

// Comparison is a run set against an older one (--compare old.json): per
// underlay and scenario both ran, every figure's new median over the old.
type Comparison struct {
	OldFile    string            `json:"old_file"`
	OldStarted time.Time         `json:"old_started"`
	OldMachine Machine           `json:"old_machine"`
	Underlays  []CompareUnderlay `json:"underlays"`
}

// CompareUnderlay is one underlay present in both runs.
type CompareUnderlay struct {
	Underlay  Underlay          `json:"underlay"`
	Scenarios []CompareScenario `json:"scenarios"`
}

// CompareScenario is one scenario with successful runs in both.
type CompareScenario struct {
	Scenario Scenario `json:"scenario"`
	// NewOverOld is new median / old median per figure the old run
	// measured as non-zero.
	NewOverOld map[string]float64 `json:"new_over_old"`
	OldMedian  Sample             `json:"old_median"`
	// OldRatioToBaseline is the old run's ratio to its own baseline (to
	// kernel VXLAN for a results.json older than baselines), which the
	// chart draws beside the new.
	OldRatioToBaseline map[string]float64 `json:"old_ratio_to_baseline"`
}

// CompareWith sets r.Compare to r against old, read from file. Scenarios and
// underlays in only one of the two are left out.
func (r *Report) CompareWith(old *Report, file string) {
	c := &Comparison{OldFile: file, OldStarted: old.Started, OldMachine: old.Machine}
	for _, nu := range r.Underlays {
		ou := findUnderlay(old, nu.Underlay)
		if ou == nil {
			continue
		}
		cu := CompareUnderlay{Underlay: nu.Underlay}
		for i := range nu.Scenarios {
			ns := &nu.Scenarios[i]
			was := findScenario(ou, ns.Scenario)
			if was == nil || len(ns.Runs) == 0 || len(was.Runs) == 0 {
				continue
			}
			cs := CompareScenario{Scenario: ns.Scenario, NewOverOld: map[string]float64{}, OldMedian: was.Median,
				OldRatioToBaseline: was.RatioToBaseline}
			if len(cs.OldRatioToBaseline) == 0 {
				cs.OldRatioToBaseline = was.Ratio
			}
			for _, m := range metrics {
				o, n := *m.get(&was.Median), *m.get(&ns.Median)
				if o != 0 {
					cs.NewOverOld[m.key] = n / o
				}
			}
			cu.Scenarios = append(cu.Scenarios, cs)
		}
		if len(cu.Scenarios) > 0 {
			c.Underlays = append(c.Underlays, cu)
		}
	}
	r.Compare = c
}

func findUnderlay(r *Report, u Underlay) *UnderlayResult {
	for i := range r.Underlays {
		if r.Underlays[i].Underlay == u {
			return &r.Underlays[i]
		}
	}
	return nil
}

func findScenario(u *UnderlayResult, sc Scenario) *ScenarioResult {
	for i := range u.Scenarios {
		if u.Scenarios[i].Scenario == sc {
			return &u.Scenarios[i]
		}
	}
	return nil
}

// compared is the old side of scenario sc on underlay u, if any.
func (c *Comparison) compared(u Underlay, sc Scenario) *CompareScenario {
	if c == nil {
		return nil
	}
	for i := range c.Underlays {
		if c.Underlays[i].Underlay != u {
			continue
		}
		for j := range c.Underlays[i].Scenarios {
			if c.Underlays[i].Scenarios[j].Scenario == sc {
				return &c.Underlays[i].Scenarios[j]
			}
		}
	}
	return nil
}
