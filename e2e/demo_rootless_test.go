package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nobodyID = 65534

// rootlessDemoCmd returns a command that runs `felt demo args...` as uid
// 65534 through script, a sh script run as root first (in a private mount
// namespace when private is set); "$FELT" and "$@" hold the binary and the
// demo's arguments.
func rootlessDemoCmd(t *testing.T, private bool, script string, args ...string) *exec.Cmd {
	t.Helper()
	bin := felt(t)
	// uid 65534 must reach the binary: go test's temporary directories are 0700.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	state, err := os.MkdirTemp("", "fdm-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	run := `exec setpriv --reuid ` + strconv.Itoa(nobodyID) + ` --regid ` + strconv.Itoa(nobodyID) + ` --clear-groups "$FELT" demo "$@"`
	cmd := exec.Command("sh", append([]string{"-ec", script + "\n" + run, "sh"}, append(args, "--state-dir", state)...)...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "FELT="+bin)
	if private {
		// Go makes the new mount namespace's mounts private.
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	return cmd
}

// TestDemoRootlessTUNMode runs the demo as an unprivileged user with this
// machine's /dev/net/tun. Debian ships it 0666 and the demo then passes;
// where it is 0600 (as on the machine this was written on) the demo, in its
// user namespace, must say exactly that and what to do, and build nothing.
func TestDemoRootlessTUNMode(t *testing.T) {
	needRoot(t)
	fi, err := os.Stat("/dev/net/tun")
	if err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	name := demoName("f")
	d := startDemo(t, rootlessDemoCmd(t, false, "", "--hosts", "2", "--name", name))
	code := d.wait(t, 60*time.Second)
	out := d.output()
	if !strings.Contains(out, "mode rootless (user namespace, uid 65534 outside)") {
		t.Errorf("the demo did not say it ran rootless:\n%s", out)
	}
	if fi.Mode().Perm()&0o006 == 0o006 {
		if code != 0 {
			t.Fatalf("rootless demo with a 0666 /dev/net/tun exited %d:\n%s", code, out)
		}
		checkDemoReport(t, out, 2)
		return
	}
	want := fmt.Sprintf("rootless mode: /dev/net/tun is mode %#o, so an unprivileged user cannot open a TUN device here", fi.Mode().Perm())
	if code == 0 || !strings.Contains(out, want) || !strings.Contains(out, "chmod 0666 /dev/net/tun") {
		t.Fatalf("rootless demo with /dev/net/tun mode %v exited %d; want a failure saying %q and how to fix it:\n%s", fi.Mode().Perm(), code, want, out)
	}
	if strings.Contains(out, "created") {
		t.Errorf("the demo built hosts although it could not open /dev/net/tun:\n%s", out)
	}
	noLeftovers(t, name)
}

// TestDemoRootless runs the whole demo as an unprivileged user, with a 0666
// /dev/net/tun bind-mounted in a private mount namespace (as Debian ships
// it): every pair connected, masquerading checked, exit 0.
func TestDemoRootless(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	script := `mount -t tmpfs none ` + dir + `
mknod -m 0666 ` + dir + `/tun c 10 200
mount --bind ` + dir + `/tun /dev/net/tun`
	name := demoName("g")
	d := startDemo(t, rootlessDemoCmd(t, true, script, "--hosts", "2", "--ip-masq", "--name", name))
	if code := d.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("rootless demo exited %d:\n%s", code, d.output())
	}
	out := d.output()
	if !strings.Contains(out, "mode rootless (user namespace, uid 65534 outside)") {
		t.Errorf("the demo did not say it ran rootless:\n%s", out)
	}
	checkDemoReport(t, out, 2)
	if !strings.Contains(out, "h0's underlay address: masqueraded") {
		t.Errorf("no masquerading check in:\n%s", out)
	}
	noLeftovers(t, name)
}
