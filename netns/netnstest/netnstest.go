// Package netnstest puts tests into throwaway network namespaces: new,
// unnamed ones (a loopback device, down, and nothing else) that vanish with
// the last thread, process or socket in them, also when the test binary dies.
// It imports nothing of felt, so any package's in-package tests can use it.
package netnstest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// NeedRoot skips the test unless it runs as root, which creating namespaces,
// links and TUN devices needs.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for a throwaway network namespace")
	}
}

// Enter moves the test's goroutine, locked to its OS thread, into a new
// throwaway network namespace until the test ends. Processes started from
// the test goroutine inherit it; other goroutines do not.
func Enter(t testing.TB) {
	t.Helper()
	NeedRoot(t)
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

// Run runs fn on a goroutine of its own, locked to a thread in a new
// throwaway network namespace, and waits for it. The thread is never
// switched back: it dies with the goroutine. fn reports failures with
// t.Error (t.Fatal belongs to the test goroutine) and returns.
func Run(t testing.TB, fn func()) {
	t.Helper()
	NeedRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare netns: %v", err)
			return
		}
		fn()
	}()
	<-done
}

// Output runs name with args from the calling goroutine's thread (so in the
// namespace Enter moved it to) and returns its combined output; it fails
// the test, with that output, if the command fails.
func Output(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
