package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoIPv6: `felt demo --ipv6` builds a dual-stack lab on each IPv6
// backend: IPv6 underlay addresses on the hosts, both families' subnets on
// the bridges, every container pair answers ping over IPv4 and IPv6, a TCP
// transfer arrives intact over each, and the lab is gone afterwards.
func TestDemoIPv6(t *testing.T) {
	needRoot(t)
	for i, backend := range []string{"vxlan", "udp"} {
		t.Run(backend, func(t *testing.T) {
			name := demoName(string(rune('v' + i)))
			d := startDemo(t, exec.Command(felt(t), "demo", "--ipv6", "--backend", backend, "--hosts", "2", "--transfer-mib", "8",
				"--name", name, "--underlay", demoUnderlay(3), "--state-dir", t.TempDir()))
			if code := d.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("felt demo --ipv6 exited %d:\n%s", code, d.output())
			}
			out := d.output()
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`"EnableIPv6":true,"IPv6Network":"fd00:5::/48"`),
				regexp.MustCompile(`h0 10\.253\.[0-9.]+ fdee:252::1, h1 10\.253\.[0-9.]+ fdee:252::2`),
				regexp.MustCompile(`ok +16 of 16 pings across hosts answered \(every container pair, IPv4 and IPv6\)`),
				regexp.MustCompile(`TCP h0/c1 → h1/c1 \(10\.5\.[0-9.]+:\d+\): 8 MiB arrived intact`),
				regexp.MustCompile(`TCP h0/c1 → h1/c1 \(\[fd00:5:[0-9a-f:]+::2\]:\d+\): 8 MiB arrived intact`),
				regexp.MustCompile(`(?m)^h1 .*fdee:252::2 .*fd00:5:[0-9a-f:]+::1/64 .* h1/c1 10\.5\.[0-9.]+ fd00:5:[0-9a-f:]+::2,`),
				regexp.MustCompile(`all 8 container pairs across hosts connected over IPv4 and IPv6\.`),
			} {
				if !want.MatchString(out) {
					t.Errorf("no %q in:\n%s", want, out)
				}
			}
			if strings.Contains(out, "FAIL") {
				t.Errorf("a check failed:\n%s", out)
			}
			noLeftovers(t, name)
		})
	}
}
