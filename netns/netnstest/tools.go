package netnstest

import (
	"os/exec"
	"testing"
)

// NeedTools skips the test unless every one of tools is on PATH (ip, ping,
// iptables: the commands a test runs to build or probe its namespaces).
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on PATH: %v", tool, err)
		}
	}
}
