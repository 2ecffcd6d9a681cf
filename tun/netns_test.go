package tun

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// needRoot skips tests that create namespaces and devices.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create a network namespace and TUN devices")
	}
}

// inThrowawayNetns moves the test's goroutine, locked to its OS thread, into a
// new network namespace until the test ends. The namespace has no name, so it
// and everything in it vanish with the thread's last reference, also when the
// test binary dies. Child processes started from the test goroutine inherit it.
func inThrowawayNetns(t testing.TB) {
	t.Helper()
	needRoot(t)
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open own netns: %v", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("unshare netns: %v", err)
	}
	t.Cleanup(func() {
		defer orig.Close()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime ends this thread with the goroutine.
			t.Errorf("restore netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
}
