// Package testwait is for tests: it polls a condition until it holds, with
// a deadline that is a liveness bound (a hang turned into a failure), not a
// timing assertion.
package testwait

import (
	"testing"
	"time"
)

// Until polls cond every every until it holds, and fails t (Fatal) naming
// what if it still does not after within.
func Until(t testing.TB, what string, within, every time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(every)
	}
}
