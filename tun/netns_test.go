package tun

import (
	"testing"

	"github.com/feltnet/felt/netns/netnstest"
)

// needRoot skips tests that create namespaces and devices.
func needRoot(t testing.TB) { netnstest.NeedRoot(t) }

// inThrowawayNetns moves the test's goroutine into a throwaway network
// namespace until the test ends (netnstest.Enter).
func inThrowawayNetns(t testing.TB) { netnstest.Enter(t) }
