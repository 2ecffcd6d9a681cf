package tun

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/feltnet/felt/tun/internal/flood"
)

// childEnv makes a re-executed test binary do a helper's job (see TestMain)
// instead of testing.
const childEnv = "FELT_TUN_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	switch mode {
	case "flood":
		return flood.Child(os.Getenv("FELT_TUN_FLOOD_DST"), floodPayload)
	}
	fmt.Println("unknown child mode", mode)
	return 2
}

// floodPayload makes the flood's packets 64 bytes: 20 IPv4 + 8 UDP + 36.
const floodPayload = 36

// startFlood starts the flood child toward dst (routed into the TUN) in the
// calling thread's network namespace and stops it at cleanup.
func startFlood(t testing.TB, dst string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=flood", "FELT_TUN_FLOOD_DST="+dst)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	flood.Start(t, cmd)
}

// tunTx returns the TUN's counters in the stack-to-reader direction:
// packets handed to the reader's queue and packets dropped at it.
func tunTx(t testing.TB, name string) (packets, dropped uint64) {
	t.Helper()
	s := mustLink(t, name).Attrs().Statistics
	return s.TxPackets, s.TxDropped
}
