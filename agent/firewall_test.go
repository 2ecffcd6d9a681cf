package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/netns/netnstest"
)

// inNewNetns runs fn on a thread in a new, throwaway network namespace (the
// thread is discarded afterwards), so iptables changes stay there.
func inNewNetns(t *testing.T, fn func()) {
	t.Helper()
	netnstest.NeedTools(t, "iptables")
	netnstest.Run(t, fn)
}

// iptSave lists the rules (-A lines) of a table of the family's iptables.
func iptSave(t *testing.T, v6 bool, table string) string {
	t.Helper()
	out, err := exec.Command(iptCmd(v6)+"-save", "-t", table).CombinedOutput()
	if err != nil {
		t.Errorf("%s-save: %v: %s", iptCmd(v6), err, out)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

var (
	testRules = ruleSet{network: netip.MustParsePrefix("10.5.0.0/16"), subnet: netip.MustParsePrefix("10.5.3.0/24"),
		masq: true, forward: true, randomFully: true}
	testRules6 = ruleSet{network: netip.MustParsePrefix("fd00:5::/48"), subnet: netip.MustParsePrefix("fd00:5:0:3::/64"),
		masq: true, forward: true, randomFully: true}
)

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

// flanneld's rule set for testRules6 as ip6tables-save prints it.
const wantNat6 = `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s fd00:5:0:3::/64 -d fd00:5::/48 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s fd00:5::/48 -d fd00:5:0:3::/64 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s fd00:5::/48 -d fd00:5:0:3::/64 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s fd00:5::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s fd00:5::/48 -d fd00:5::/48 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`

const wantFilter6 = `-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s fd00:5::/48 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d fd00:5::/48 -m comment --comment "flanneld forward" -j ACCEPT`

// families are the two rule sets and what iptables-save prints for them.
var families = []struct {
	name               string
	rs                 ruleSet
	wantNat, wantFiltr string
	otherSubnet, stray string // a previous run's subnet; an address for a stray rule
	movedTo            string // a re-acquired subnet
}{
	{"IPv4", testRules, wantNat, wantFilter, "10.5.77.0/24", "192.0.2.1", "10.5.9.0/24"},
	{"IPv6", testRules6, wantNat6, wantFilter6, "fd00:5:0:77::/64", "2001:db8::1", "fd00:5:0:9::/64"},
}

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

// TestIptablesRuleSet (iptables and ip6tables): the rules are flanneld's,
// in flanneld's order; a second install changes nothing; a rule deleted by
// hand makes the check rebuild the whole set in order; the rules follow a
// new subnet; a previous subnet's rules (and anything else in felt's
// chains) are flushed at start.
func TestIptablesRuleSet(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			inNewNetns(t, func() { iptablesRuleSet(t, f.rs, f.wantNat, f.wantFiltr, f.otherSubnet, f.stray, f.movedTo) })
		})
	}
}

func iptablesRuleSet(t *testing.T, rs ruleSet, wantNat, wantFilter, otherSubnet, stray, movedTo string) {
	v6 := rs.v6()
	// A previous run's rules for another subnet, and a stray rule.
	old := rs
	old.subnet = netip.MustParsePrefix(otherSubnet)
	if err := (iptFirewall{}).install(old); err != nil {
		t.Errorf("install old: %v", err)
		return
	}
	ipt(v6, "-t", "nat", "-A", masqChain, "-s", stray, "-j", "RETURN")
	k := &fwKeeper{fw: iptFirewall{}, log: zap.NewNop()}
	for i := 0; i < 2; i++ {
		if err := k.start(rs); err != nil {
			t.Errorf("start: %v", err)
			return
		}
	}
	check := func(when string) {
		if got := byChain(iptSave(t, v6, "nat")); got != wantNat {
			t.Errorf("%s: nat rules:\n%s\nwant:\n%s", when, got, wantNat)
		}
		if got := byChain(iptSave(t, v6, "filter")); got != wantFilter {
			t.Errorf("%s: filter rules:\n%s\nwant:\n%s", when, got, wantFilter)
		}
	}
	check("after start")
	if got := iptSave(t, !v6, "nat") + iptSave(t, !v6, "filter"); got != "" {
		t.Errorf("rules in the other family's tables:\n%s", got)
	}
	if rebuilt, err := k.check(); err != nil || rebuilt {
		t.Errorf("check with every rule in place: rebuilt %v, err %v", rebuilt, err)
	}
	// Delete the third masquerade rule and the second forward rule by hand.
	if out, err := ipt(v6, "-t", "nat", "-D", masqChain, "3"); err != nil {
		t.Errorf("delete by hand: %v %s", err, out)
	}
	if out, err := ipt(v6, "-t", "filter", "-D", fwdChain, "2"); err != nil {
		t.Errorf("delete by hand: %v %s", err, out)
	}
	if rebuilt, err := k.check(); err != nil || !rebuilt {
		t.Errorf("check after a rule was deleted: rebuilt %v, err %v", rebuilt, err)
	}
	check("after the resync")
	if err := k.setSubnet(netip.MustParsePrefix(movedTo)); err != nil {
		t.Errorf("setSubnet: %v", err)
	}
	if got := iptSave(t, v6, "nat"); strings.Contains(got, rs.subnet.String()) || strings.Count(got, movedTo) != 3 {
		t.Errorf("after the subnet moved, want only %s's rules:\n%s", movedTo, got)
	}
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
		got := iptSave(t, false, "nat")
		if strings.Contains(got, "random-fully") || strings.Count(got, "-j MASQUERADE") != 2 {
			t.Errorf("want two MASQUERADE rules without --random-fully:\n%s", got)
		}
	})
}

// TestMasqRulesAreFlanneld: the rule specs, before iptables prints them
// back, are flanneld's for each family (multicast ff00::/8 for IPv6).
func TestMasqRulesAreFlanneld(t *testing.T) {
	for _, f := range families {
		var got []string
		for _, r := range masqRules(f.rs) {
			got = append(got, strings.Join(r, " "))
		}
		var want []string
		for _, l := range strings.Split(f.wantNat, "\n")[1:] {
			l = strings.TrimPrefix(l, "-A "+masqChain+" ")
			want = append(want, strings.ReplaceAll(l, `"flanneld masq"`, "flanneld masq"))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s rules:\n%s\nwant:\n%s", f.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// flakyFirewall fails its first installs, then keeps what it is given.
type flakyFirewall struct {
	mu       sync.Mutex
	failures int // installs still to fail
	installs int
	have     *ruleSet
}

func (*flakyFirewall) mode() string       { return "fake" }
func (*flakyFirewall) removeOther() error { return nil }
func (*flakyFirewall) remove() error      { return nil }
func (f *flakyFirewall) install(rs ruleSet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installs++
	if f.failures > 0 {
		f.failures--
		return errors.New("xtables lock held by another process")
	}
	f.have = &rs
	return nil
}
func (f *flakyFirewall) intact(rs ruleSet) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have != nil && *f.have == rs, nil
}

// TestForwardRulesRetried: forward rules (no masquerade) that cannot be set
// at start are a warning and are set by a later resync; the failure is not
// taken for a firewall without fully-random masquerade.
func TestForwardRulesRetried(t *testing.T) {
	fw := &flakyFirewall{failures: 1}
	n := &node{cfg: Config{ForwardRules: true, Resync: 10 * time.Millisecond}, log: zap.NewNop()}
	ctx, cancel := context.WithCancel(context.Background())
	g := newGroup(ctx)
	k, err := n.keepFirewall(g, fw, testRules.network, testRules.subnet)
	if err != nil || k == nil {
		t.Fatalf("keepFirewall: %v, keeper %v; want a warning and a keeper", err, k)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := fw.intact(k.rs); !ok; ok, _ = fw.intact(k.rs) {
		if time.Now().After(deadline) {
			t.Fatalf("forward rules still not set after %d installs", fw.installs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	g.wait()
	if !fw.have.randomFully {
		t.Error("a lock error turned fully-random masquerade off")
	}
}

func TestLacksRandomFully(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New(`iptables-restore (table nat): iptables-restore v1.8.4 (legacy): unknown option "--random-fully"`), true},
		{fmt.Errorf("nftables: set up table flannel-ipv4: %w", unix.EOPNOTSUPP), true},
		{errors.New("iptables-restore (table nat): Another app is currently holding the xtables lock"), false},
	} {
		if got := lacksRandomFully(tc.err); got != tc.want {
			t.Errorf("lacksRandomFully(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
