package netns

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestCloseLeavesNothing(t *testing.T) {
	needRoot(t)
	name := labName("c")
	if before := leftovers(t, name); len(before) > 0 {
		t.Fatalf("leftovers before the test: %v", before)
	}
	l, err := NewLab(testCtx(t), LabConfig{Name: name, Hosts: 2, Underlay: underlay("c")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.Hosts[0].AddContainer(testCtx(t), "ctr", "cbr0", mustPrefix("10.77.0.2/24"), mustPrefix("10.77.0.1/24").Addr()); err != nil {
		t.Fatal(err)
	}
	p, err := l.Hosts[1].Start(testCtx(t), "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	// A process the lab did not start, left running in a host.
	stray := l.Hosts[0].Command(testCtx(t), "sleep", "1000")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	go stray.Wait()
	during := leftovers(t, name)
	if len(during) < 5 { // bridge, 2 veths, 2 hosts, 1 container
		t.Fatalf("lab shows only %v", during)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if after := leftovers(t, name); len(after) > 0 {
		t.Errorf("left behind after Close: %v", after)
	}
	for _, pid := range []int{p.Pid(), stray.Process.Pid} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			// the stray may linger as our zombie until Wait reaps it
			if pid != stray.Process.Pid || !isZombie(pid) {
				t.Errorf("process %d still runs after Close", pid)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.AddHost(testCtx(t)); err == nil {
		t.Errorf("AddHost after Close succeeded")
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(b), ") Z ")
}

// TestNewLabUndoesOnFailure makes the second host's veth name taken, so
// NewLab fails half-way; what it built must be gone.
func TestNewLabUndoesOnFailure(t *testing.T) {
	needRoot(t)
	name := labName("u")
	blocker := name + "v1"
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: blocker}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", blocker).Run() })
	l, err := NewLab(testCtx(t), LabConfig{Name: name, Hosts: 3, Underlay: underlay("u")})
	if err == nil {
		l.Close()
		t.Fatal("NewLab succeeded although host 1's veth name was taken")
	}
	if !strings.Contains(err.Error(), blocker) {
		t.Errorf("error does not name the failing link: %v", err)
	}
	if after := leftovers(t, name); len(after) != 1 || after[0] != "link "+blocker {
		t.Errorf("after the failed NewLab: %v; want only our blocker", after)
	}
}

// TestCloseOnFailedTest runs a test that fails midway (in a child process)
// and checks its t.Cleanup(lab.Close) removed everything.
func TestCloseOnFailedTest(t *testing.T) {
	needRoot(t)
	name := labName("f")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFailMidway$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FELT_NETNS_FAIL_LAB="+name)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "failing on purpose") {
		t.Fatalf("helper did not fail as planned: %v\n%s", err, out)
	}
	if after := leftovers(t, name); len(after) > 0 {
		t.Errorf("a failed test left behind: %v\n%s", after, out)
		Cleanup(name)
	}
}

func TestHelperFailMidway(t *testing.T) {
	name := os.Getenv("FELT_NETNS_FAIL_LAB")
	if name == "" {
		t.Skip("helper of TestCloseOnFailedTest; runs only when it starts it")
	}
	l := newLab(t, LabConfig{Name: name, Hosts: 2, Underlay: underlay("f")})
	if _, err := l.Hosts[0].Start(testCtx(t), "sleep", "1000"); err != nil {
		t.Fatal(err)
	}
	t.Fatal("failing on purpose, with a lab and a process up")
}

func TestCleanupAfterCrash(t *testing.T) {
	needRoot(t)
	name := labName("k")
	l, err := NewLab(testCtx(t), LabConfig{Name: name, Hosts: 2, Underlay: underlay("k")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	stray := l.Hosts[0].Command(testCtx(t), "sleep", "1000")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stray.Wait() }()
	// As if the process that built the lab had died: only the name is known.
	if err := Cleanup(name); err != nil {
		t.Fatal(err)
	}
	if after := leftovers(t, name); len(after) > 0 {
		t.Errorf("left behind after Cleanup: %v", after)
	}
	if err := <-done; err == nil {
		t.Errorf("the process in the lab was not killed")
	}
	if err := Cleanup("f"); err == nil {
		t.Errorf("Cleanup with a one-letter prefix was accepted")
	}
}
