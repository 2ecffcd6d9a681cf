package netns

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const (
	rootlessRole = "FELT_NETNS_TEST_ROOTLESS"
	rootlessDone = "FELT-NETNS-ROOTLESS-PINGED"
	nobody       = 65534
)

// TestRootlessLab runs a child as uid 65534, which re-executes itself with
// ReexecRootless and builds a 2-host lab there; the hosts ping each other.
func TestRootlessLab(t *testing.T) {
	needRoot(t)
	// /proc/self/exe: nobody cannot reach go test's 0700 build directory.
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperRootless$", "-test.count=1", "-test.v")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), rootlessRole+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), rootlessDone) {
		t.Fatalf("rootless lab as uid %d: %v\n%s", nobody, err, out)
	}
	if testing.Verbose() {
		t.Logf("child output:\n%s", out)
	}
}

func TestHelperRootless(t *testing.T) {
	if os.Getenv(rootlessRole) == "" {
		t.Skip("helper of TestRootlessLab; runs only when it starts it")
	}
	ctx := testCtx(t)
	if !InRootless() {
		if !Rootless() || os.Getuid() != nobody {
			t.Fatalf("outer helper runs as uid %d; want %d", os.Getuid(), nobody)
		}
		if err := ReexecRootless(ctx, []string{"-test.run=^TestHelperRootless$", "-test.count=1", "-test.v"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Inside: root of a user namespace that owns this network namespace.
	if Rootless() {
		t.Fatalf("uid %d inside the user namespace, want 0", os.Getuid())
	}
	l, err := NewLab(ctx, LabConfig{Name: "r", Hosts: 2, Underlay: netip.MustParsePrefix("10.250.7.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ping(t, l.Hosts[0], l.Hosts[1].Addr)
	ping(t, l.Hosts[1], l.Hosts[0].Addr)
	if !t.Failed() {
		t.Log(rootlessDone)
	}
}
