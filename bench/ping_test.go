package bench

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// pingUntil keeps probing until its time is up when every probe fails at
// once (here: no route, as an agent's "net unreachable" before it knows the
// peer), and then names the address, the host and the time it gave; a
// reachable address answers at the first probe.
func TestPingUntilWaitsOutFastFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	name := fmt.Sprintf("fbp%d", os.Getpid()%100000)
	lab, err := netns.NewLab(t.Context(), netns.LabConfig{Name: name, Hosts: 2, Topology: netns.Pair,
		Underlay: netip.MustParsePrefix("10.98.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	h := lab.Hosts[0]
	if err := pingUntil(t.Context(), h, lab.Hosts[1].Addr, 5*time.Second); err != nil {
		t.Fatalf("the peer on the pair: %v", err)
	}
	const within = 400 * time.Millisecond
	start := time.Now()
	err = pingUntil(t.Context(), h, netip.MustParseAddr("10.97.0.1"), within)
	if took := time.Since(start); err == nil || took < within {
		t.Fatalf("unroutable address: %v after %v, want an error after at least %v", err, took, within)
	}
	if !strings.Contains(err.Error(), "10.97.0.1") || !strings.Contains(err.Error(), h.Name) || !strings.Contains(err.Error(), within.String()) {
		t.Errorf("error %q: want the address, the host and %v", err, within)
	}
}
