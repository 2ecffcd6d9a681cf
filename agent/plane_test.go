package agent

import (
	"testing"

	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// TestTUNDropKindsAreReasons: every kind of drop the TUN device counts has
// a router Reason of that name, so router.New accepts the device and its
// drops show up in /metrics and `felt status`.
func TestTUNDropKindsAreReasons(t *testing.T) {
	names := map[string]bool{}
	for r := router.Reason(0); r < router.NumReasons; r++ {
		names[r.String()] = true
	}
	kinds := (*tun.Device)(nil).DropKinds()
	if len(kinds) < 2 {
		t.Fatalf("DropKinds = %q, want the tun's reasons", kinds)
	}
	for k, name := range kinds {
		if name != "" && !names[name] {
			t.Errorf("tun drop kind %d %q: no router.Reason has that name", k, name)
		}
	}
}
