package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestQuickRun runs the whole suite in quick mode (veth only; both
// underlays with FELT_LONG=1) and checks that the report is complete and
// well-formed. It does not judge the numbers: the machine is shared.
func TestQuickRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces, TUN and vxlan devices (CI runs as root)")
	}
	if testing.Short() {
		t.Skip("end-to-end benchmark run: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "felt")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/feltnet/felt/cmd/felt").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	underlays := []Underlay{Veth}
	if os.Getenv("FELT_LONG") == "1" {
		underlays = AllUnderlays
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	c := Config{FeltBin: bin, Underlays: underlays, Quick: true, Name: fmt.Sprintf("fbt%d", os.Getpid()%100000),
		ProfileDir: filepath.Join(t.TempDir(), "prof"), Progress: &progress, Log: zaptest.NewLogger(t)}
	r, err := Run(ctx, c)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing of the labs is left behind.
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), c.Name) {
		t.Errorf("namespaces left behind:\n%s", out)
	}

	if len(r.Underlays) != len(underlays) {
		t.Fatalf("%d underlays in the report, want %d", len(r.Underlays), len(underlays))
	}
	for i, u := range r.Underlays {
		if u.Underlay != underlays[i] || len(u.Scenarios) != len(AllScenarios) {
			t.Fatalf("underlay %d: %s with %d scenarios", i, u.Underlay, len(u.Scenarios))
		}
		for j, s := range u.Scenarios {
			name := string(u.Underlay) + "/" + string(s.Scenario)
			if s.Scenario != AllScenarios[j] || len(s.Runs) != 1 || len(s.Errors) != 0 {
				t.Errorf("%s: %d runs, errors %v", name, len(s.Runs), s.Errors)
				continue
			}
			m := s.Median
			for _, mt := range metrics {
				v := *mt.get(&m)
				felt := s.Scenario == FeltUDP || s.Scenario == FeltVXLAN
				optional := mt.key == "udp64_loss_pct" || mt.key == "agent_allocs_per_packet" || (mt.agent && !felt)
				if v < 0 || (v == 0 && !optional) {
					t.Errorf("%s: %s = %g", name, mt.key, v)
				}
				if mt.agent && !felt && v != 0 {
					t.Errorf("%s: %s %g for a path without agents", name, mt.key, v)
				}
			}
			// A packet path that allocated per packet would show 1 or more;
			// the agents' background work is well below one per packet.
			if m.AgentAllocsPerPacket >= 0.5 {
				t.Errorf("%s: %g heap allocations per forwarded packet, want ≪ 1", name, m.AgentAllocsPerPacket)
			}
			if m.PingP99us < m.PingP50us || m.UDPLossPct > 100 {
				t.Errorf("%s: p99 %g < p50 %g or loss %g%%", name, m.PingP99us, m.PingP50us, m.UDPLossPct)
			}
			for _, k := range chartMetrics {
				if _, ok := s.Ratio[k]; !ok {
					t.Errorf("%s: no ratio for %s", name, k)
				}
			}
			if s.Scenario == KernelVXLAN && s.Ratio["tcp1_gbps"] != 1 {
				t.Errorf("kernel-vxlan's ratio to itself is %g", s.Ratio["tcp1_gbps"])
			}
			if !strings.Contains(progress.String(), string(u.Underlay)+" rep 1/1 "+string(s.Scenario)) {
				t.Errorf("no progress line for %s", name)
			}
		}
	}
	profs, _ := filepath.Glob(filepath.Join(c.ProfileDir, "*.pprof"))
	if want := 4 * len(underlays); len(profs) != want {
		t.Errorf("%d agent profiles, want %d: %v", len(profs), want, profs)
	}
	for _, p := range profs {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("profile %s empty or missing: %v", p, err)
		}
	}
	dir := t.TempDir()
	if _, err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, r)
}
