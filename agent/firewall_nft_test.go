package agent

import (
	"testing"

	"github.com/google/nftables"
	"go.uber.org/zap"
)

// nftRules lists the rules of a chain of felt's table, or nil if absent.
func nftRulesOf(t *testing.T, chain *nftables.Chain) []*nftables.Rule {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(nftTable, chain)
	if err != nil {
		return nil
	}
	return rules
}

// TestNftablesRuleSet: EnableNFTables writes flanneld's table and chains
// through netlink, with the rules in order; a rule deleted by hand is back
// after the check; iptables chains of a previous iptables-mode run are
// removed, and switching back removes the nftables table.
func TestNftablesRuleSet(t *testing.T) {
	inNewNetns(t, func() {
		if err := (iptFirewall{}).install(testRules); err != nil {
			t.Errorf("iptables install: %v", err)
			return
		}
		k := &fwKeeper{fw: nftFirewall{}, log: zap.NewNop()}
		if err := k.start(testRules); err != nil {
			t.Errorf("start: %v", err)
			return
		}
		if got := iptSave(t, "nat") + iptSave(t, "filter"); got != "" {
			t.Errorf("iptables rules left after switching to nftables:\n%s", got)
		}
		postrtg, forward := nftChains(nftTable)
		want := nftMasqRules(testRules)
		got := nftRulesOf(t, postrtg)
		if len(got) != len(want) || len(nftRulesOf(t, forward)) != 2 {
			t.Errorf("postrtg has %d rules (want %d), forward %d (want 2)", len(got), len(want), len(nftRulesOf(t, forward)))
			return
		}
		for i := range want {
			if len(got[i].Exprs) != len(want[i]) {
				t.Errorf("postrtg rule %d: %d expressions, want %d: %#v", i, len(got[i].Exprs), len(want[i]), got[i].Exprs)
			}
		}
		if rebuilt, err := k.check(); err != nil || rebuilt {
			t.Errorf("check with all rules: rebuilt %v, err %v", rebuilt, err)
		}
		c, _ := nftables.New()
		nftDelRule(t, c, got[2])
		if n := len(nftRulesOf(t, postrtg)); n != len(want)-1 {
			t.Errorf("after deleting one rule by hand: %d rules", n)
		}
		if rebuilt, err := k.check(); err != nil || !rebuilt {
			t.Errorf("check after a rule was deleted: rebuilt %v, err %v", rebuilt, err)
		}
		again := nftRulesOf(t, postrtg)
		if len(again) != len(want) {
			t.Errorf("after the resync: %d rules, want %d", len(again), len(want))
		}
		for i := range again {
			if len(again[i].Exprs) != len(got[i].Exprs) {
				t.Errorf("after the resync rule %d differs: %#v, was %#v", i, again[i].Exprs, got[i].Exprs)
			}
		}
		// Back to iptables mode: the table goes.
		k2 := &fwKeeper{fw: iptFirewall{}, log: zap.NewNop()}
		if err := k2.start(testRules); err != nil {
			t.Errorf("iptables start: %v", err)
		}
		if _, err := c.ListTableOfFamily(nftTable4, nftables.TableFamilyIPv4); err == nil {
			t.Errorf("table %s still there in iptables mode", nftTable4)
		}
	})
}

// nftDelRule deletes r by hand, as an admin would.
func nftDelRule(t *testing.T, c *nftables.Conn, r *nftables.Rule) {
	t.Helper()
	if err := c.DelRule(r); err != nil {
		t.Errorf("DelRule: %v", err)
	}
	if err := c.Flush(); err != nil {
		t.Errorf("delete rule by hand: %v", err)
	}
}
