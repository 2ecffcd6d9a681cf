package agent

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/netns/netnstest"
)

// inNewNetns runs fn on a thread in a new, throwaway network namespace (the
// thread is discarded afterwards), so iptables changes stay there.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	netnstest.NeedTools(t, "iptables")
	netnstest.Run(t, fn)
}

func iptSave(t *testing.T, table string) string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", table).CombinedOutput()
	if err != nil {
		t.Errorf("iptables-save: %v: %s", err, out)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

var testRules = ruleSet{network: netip.MustParsePrefix("10.5.0.0/16"), subnet: netip.MustParsePrefix("10.5.3.0/24"),
	masq: true, forward: true, randomFully: true}

// flanneld's rule set for testRules as iptables-save prints it (docs/flannel-interop.md).
const wantNat = `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.5.3.0/24 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.5.0.0/16 -d 10.5.3.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.3.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.5.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`

const wantFilter = `-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`

// byChain orders iptables-save lines by chain, keeping the order within
// a chain (iptables-save lists chains in its own order).
func byChain(s string) string {
	var post, other []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "-A POSTROUTING") || strings.HasPrefix(l, "-A FORWARD") {
			post = append(post, l)
		} else if l != "" {
			other = append(other, l)
		}
	}
	return strings.Join(append(post, other...), "\n")
}

// TestIptablesRuleSet: the rules are flanneld's, in flanneld's order; a
// second install changes nothing; a rule deleted by hand makes the check
// rebuild the whole set in order; the rules follow a new subnet; a previous
// subnet's rules (and anything else in felt's chains) are flushed at start.
func TestIptablesRuleSet(t *testing.T) {
	inNewNetns(t, func() {
		// A previous run's rules for another subnet, and a stray rule.
		old := testRules
		old.subnet = netip.MustParsePrefix("10.5.77.0/24")
		if err := (iptFirewall{}).install(old); err != nil {
			t.Errorf("install old: %v", err)
			return
		}
		iptables("-t", "nat", "-A", masqChain, "-s", "192.0.2.1", "-j", "RETURN")
		k := &fwKeeper{fw: iptFirewall{}, log: zap.NewNop()}
		for i := 0; i < 2; i++ {
			if err := k.start(testRules); err != nil {
				t.Errorf("start: %v", err)
				return
			}
		}
		check := func(when string) {
			if got := byChain(iptSave(t, "nat")); got != wantNat {
				t.Errorf("%s: nat rules:\n%s\nwant:\n%s", when, got, wantNat)
			}
			if got := byChain(iptSave(t, "filter")); got != wantFilter {
				t.Errorf("%s: filter rules:\n%s\nwant:\n%s", when, got, wantFilter)
			}
		}
		check("after start")
		if rebuilt, err := k.check(); err != nil || rebuilt {
			t.Errorf("check with every rule in place: rebuilt %v, err %v", rebuilt, err)
		}
		// Delete the third masquerade rule and the second forward rule by hand.
		if out, err := iptables("-t", "nat", "-D", masqChain, "3"); err != nil {
			t.Errorf("delete by hand: %v %s", err, out)
		}
		if out, err := iptables("-t", "filter", "-D", fwdChain, "2"); err != nil {
			t.Errorf("delete by hand: %v %s", err, out)
		}
		if rebuilt, err := k.check(); err != nil || !rebuilt {
			t.Errorf("check after a rule was deleted: rebuilt %v, err %v", rebuilt, err)
		}
		check("after the resync")
		if err := k.setSubnet(netip.MustParsePrefix("10.5.9.0/24")); err != nil {
			t.Errorf("setSubnet: %v", err)
		}
		if got := iptSave(t, "nat"); strings.Contains(got, "10.5.3.0/24") || strings.Count(got, "10.5.9.0/24") != 3 {
			t.Errorf("after the subnet moved, want only 10.5.9.0/24's rules:\n%s", got)
		}
	})
}

// TestIptablesNoRandomFully: --ip-masq-fully-random-disable masquerades
// without --random-fully.
func TestIptablesNoRandomFully(t *testing.T) {
	inNewNetns(t, func() {
		rs := testRules
		rs.randomFully = false
		k := &fwKeeper{fw: iptFirewall{}, log: zap.NewNop()}
		if err := k.start(rs); err != nil {
			t.Errorf("start: %v", err)
			return
		}
		got := iptSave(t, "nat")
		if strings.Contains(got, "random-fully") || strings.Count(got, "-j MASQUERADE") != 2 {
			t.Errorf("want two MASQUERADE rules without --random-fully:\n%s", got)
		}
	})
}

func TestMasqRulesAreFlanneld(t *testing.T) {
	rules := masqRules(netip.MustParsePrefix("10.5.0.0/16"), netip.MustParsePrefix("10.5.3.0/24"), true)
	var got []string
	for _, r := range rules {
		got = append(got, strings.Join(r, " "))
	}
	c := ` -m comment --comment flanneld masq`
	want := []string{
		"-m mark --mark 0x4000/0x4000" + c + " -j RETURN",
		"-s 10.5.3.0/24 -d 10.5.0.0/16" + c + " -j RETURN",
		"-s 10.5.0.0/16 -d 10.5.3.0/24" + c + " -j RETURN",
		"! -s 10.5.0.0/16 -d 10.5.3.0/24" + c + " -j RETURN",
		"-s 10.5.0.0/16 ! -d 224.0.0.0/4" + c + " -j MASQUERADE --random-fully",
		"! -s 10.5.0.0/16 -d 10.5.0.0/16" + c + " -j MASQUERADE --random-fully",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
