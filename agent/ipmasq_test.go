package agent

import (
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// inNewNetns runs fn on a thread in a new, throwaway network namespace (the
// thread is discarded afterwards), so iptables changes stay there.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: iptables in a throwaway network namespace")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed (apt-get install iptables)")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		fn()
	}()
	<-done
}

// TestIPMasqFollowsSubnet: flanneld's rules appear for the lease's subnet,
// and move when a re-acquired lease has another one.
func TestIPMasqFollowsSubnet(t *testing.T) {
	inNewNetns(t, func() {
		m := &ipMasq{network: netip.MustParsePrefix("10.5.0.0/16"), subnet: netip.MustParsePrefix("10.5.3.0/24"),
			log: zap.NewNop(), randomFully: true}
		if err := m.ensure(); err != nil {
			t.Errorf("ensure: %v", err)
			return
		}
		if err := m.ensure(); err != nil { // idempotent
			t.Errorf("second ensure: %v", err)
			return
		}
		rules := func() string {
			out, err := exec.Command("iptables", "-w", "5", "-t", "nat", "-S", masqChain).CombinedOutput()
			if err != nil {
				t.Errorf("iptables -S: %v: %s", err, out)
			}
			return string(out)
		}
		got := rules()
		if n := strings.Count(got, "-A "+masqChain); n != 6 || strings.Count(got, "10.5.3.0/24") != 3 {
			t.Errorf("after ensure twice, want 6 rules, 3 naming 10.5.3.0/24:\n%s", got)
		}
		if err := m.setSubnet(netip.MustParsePrefix("10.5.9.0/24")); err != nil {
			t.Errorf("setSubnet: %v", err)
			return
		}
		got = rules()
		if strings.Contains(got, "10.5.3.0/24") || strings.Count(got, "10.5.9.0/24") != 3 || strings.Count(got, "-A "+masqChain) != 6 {
			t.Errorf("after the subnet moved, want only 10.5.9.0/24's 6 rules:\n%s", got)
		}
	})
}

// TestForwardRules: flanneld's FLANNEL-FWD chain, jumped to from FORWARD.
func TestForwardRules(t *testing.T) {
	inNewNetns(t, func() {
		n := netip.MustParsePrefix("10.5.0.0/16")
		for i := 0; i < 2; i++ { // idempotent
			if err := ensureForward(n); err != nil {
				t.Errorf("ensureForward: %v", err)
				return
			}
		}
		out, err := exec.Command("iptables", "-w", "5", "-S").CombinedOutput()
		if err != nil {
			t.Errorf("iptables -S: %v: %s", err, out)
			return
		}
		got := string(out)
		for _, want := range []string{
			`-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD`,
			`-A FLANNEL-FWD -s 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
			`-A FLANNEL-FWD -d 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
		} {
			if strings.Count(got, want) != 1 {
				t.Errorf("want exactly one %q in:\n%s", want, got)
			}
		}
	})
}
