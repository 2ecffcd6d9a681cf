package tun

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	helperEnv  = "FELT_TUN_TEST_HELPER"     // the TUN the helper opens
	helperDir  = "FELT_TUN_TEST_HELPER_DIR" // where it may mount a tmpfs
	helperMark = "FELT-TUN-HELPER-RESULT "
	nobody     = 65534
)

// helperResult is what the unprivileged helper process reports.
type helperResult struct {
	Uid        int
	CapEff     string
	CreateErr  string
	Offloads   Offloads
	Skipped    []string
	ConfErr    string
	MissingErr string // Create of a TUN that does not exist
}

// TestUnprivilegedPersistentTUN is the deployment where an admin made a
// persistent TUN for a non-root user: the user's process opens it with
// offloads and Configure reports, without failing, what only root can do.
func TestUnprivilegedPersistentTUN(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("p")
	run(t, "ip", "tuntap", "add", "dev", name, "mode", "tun", "user", fmt.Sprint(nobody))

	res := runHelper(t, name)
	if res.Uid != nobody || strings.Trim(res.CapEff, "0") != "" {
		t.Fatalf("helper ran as uid %d with CapEff %s; want uid %d with no capabilities", res.Uid, res.CapEff, nobody)
	}
	if res.CreateErr != "" {
		t.Fatalf("Create as uid %d: %s", nobody, res.CreateErr)
	}
	if !res.Offloads.VnetHdr || !res.Offloads.TSO {
		t.Errorf("offloads as uid %d: %v; want vnet_hdr and tso on", nobody, res.Offloads)
	}
	if res.ConfErr != "" {
		t.Errorf("Configure failed instead of skipping: %s", res.ConfErr)
	}
	wants := []string{
		"mtu 1400 not set (" + name + " has 1500): no CAP_NET_ADMIN; ask your admin to run: ip link set dev " + name + " mtu 1400",
		"address 10.5.3.0/32 not set: no CAP_NET_ADMIN; ask your admin to run: ip addr add 10.5.3.0/32 dev " + name,
		"link " + name + " not brought up: no CAP_NET_ADMIN; ask your admin to run: ip link set dev " + name + " up",
		"route 10.5.0.0/16 not added: no CAP_NET_ADMIN; ask your admin to run: ip route replace 10.5.0.0/16 dev " + name,
	}
	if strings.Join(res.Skipped, "\n") != strings.Join(wants, "\n") {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(res.Skipped, "\n"), strings.Join(wants, "\n"))
	}
	if !strings.Contains(res.MissingErr, "ip tuntap add dev") || !strings.Contains(res.MissingErr, "run as root") {
		t.Errorf("Create of a missing TUN as uid %d: %q; want advice to run as root or use ip tuntap add", nobody, res.MissingErr)
	}
	if l, err := netlink.LinkByName(name); err != nil || l.Attrs().MTU != 1500 {
		t.Errorf("the unprivileged helper changed the link (or it vanished): %v %v", l, err)
	}

	// The admin runs what the sentences ask for; then nothing is skipped.
	for _, s := range res.Skipped {
		_, cmd, _ := strings.Cut(s, "ask your admin to run: ")
		f := strings.Fields(cmd)
		run(t, f[0], f[1:]...)
	}
	if again := runHelper(t, name); again.CreateErr != "" || again.ConfErr != "" || len(again.Skipped) != 0 {
		t.Errorf("after the admin's commands: create %q, configure %q, skipped %q; want all done",
			again.CreateErr, again.ConfErr, again.Skipped)
	}
}

// runHelper re-executes the test binary as a child in this test's network
// namespace (it is forked from the locked thread) and its own mount namespace.
func runHelper(t *testing.T, name string) helperResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperUnprivileged$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+name, helperDir+"="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, helperMark); ok {
			var r helperResult
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				t.Fatalf("helper result %q: %v", j, err)
			}
			return r
		}
	}
	t.Fatalf("helper printed no result:\n%s", out)
	return helperResult{}
}

// TestHelperUnprivileged is the child of TestUnprivilegedPersistentTUN.
func TestHelperUnprivileged(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("helper process of TestUnprivilegedPersistentTUN; runs only when it starts it")
	}
	// Many distributions ship /dev/net/tun as 0666; this machine has 0600.
	// Give this process (only: its mount namespace is private) a 0666 node
	// for the same device, as an admin would, before dropping root.
	if err := tunNodeForAll(os.Getenv(helperDir)); err != nil {
		t.Fatal(err)
	}
	if err := dropToNobody(); err != nil {
		t.Fatal(err)
	}
	r := helperResult{Uid: os.Geteuid(), CapEff: capEff()}
	if dev, err := Create(name, 1400); err != nil {
		r.CreateErr = err.Error()
	} else {
		defer dev.Close()
		if r.Offloads, err = dev.Offloads(); err != nil {
			r.CreateErr = err.Error()
		}
		r.Skipped, err = Configure(name, NetConfig{Addr: mustPrefix("10.5.3.0/32"), MTU: 1400,
			Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}})
		if err != nil {
			r.ConfErr = err.Error()
		}
	}
	if _, err := Create(name+"x", 0); err != nil {
		r.MissingErr = err.Error()
	}
	j, _ := json.Marshal(r)
	fmt.Println(helperMark + string(j))
}

func tunNodeForAll(dir string) error {
	if err := unix.Mount("none", dir, "tmpfs", 0, ""); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	node := filepath.Join(dir, "tun")
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))); err != nil {
		return fmt.Errorf("mknod %s: %w", node, err)
	}
	if err := os.Chmod(node, 0o666); err != nil { // mknod is subject to umask
		return err
	}
	if err := unix.Mount(node, "/dev/net/tun", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /dev/net/tun: %w", node, err)
	}
	return nil
}

// dropToNobody changes every thread of this process to uid/gid 65534, which
// also clears all capabilities.
func dropToNobody() error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(nobody, nobody, nobody); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(nobody, nobody, nobody); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	return nil
}

func capEff() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown: " + err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
