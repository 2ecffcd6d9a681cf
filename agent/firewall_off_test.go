package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
)

// startFirewallWith runs startFirewall for a node with these flags and
// firewall mode (nftables when nft), on a previous run's full rule set.
func startFirewallWith(t *testing.T, masq, forward, nft bool) {
	t.Helper()
	nc := &lease.Config{Network: testRules.network, EnableNFTables: nft}
	n := &node{cfg: Config{IPMasq: masq, ForwardRules: forward, Resync: time.Hour}, log: zap.NewNop(), netCfg: nc,
		own: lease.Lease{Subnet: testRules.subnet}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the resync goroutine ends at once (it would run outside the namespace)
	g := newGroup(ctx)
	if err := n.startFirewall(g); err != nil {
		t.Errorf("startFirewall: %v", err)
	}
	g.wait()
}

// TestFirewallCleanedWhenOff (throwaway namespaces): as flanneld, felt
// removes felt's rules that the flags no longer ask for: with
// --ip-masq=false and --iptables-forward-rules=false every chain of both
// modes goes; with the masquerade off and forward rules on, the nat chain
// (nftables: the postrtg chain) goes and the forward rules stay.
func TestFirewallCleanedWhenOff(t *testing.T) {
	for _, nft := range []bool{false, true} {
		mode := map[bool]string{false: "iptables", true: "nftables"}[nft]
		inNewNetns(t, func() {
			if err := newFirewall(nft).install(testRules); err != nil {
				t.Errorf("%s: install a previous run's rules: %v", mode, err)
				return
			}
			startFirewallWith(t, false, false, nft)
			if got := iptSave(t, "nat") + iptSave(t, "filter"); got != "" {
				t.Errorf("%s, both flags off: iptables rules left:\n%s", mode, got)
			}
			if c, err := nftables.New(); err == nil {
				if _, err := c.ListTableOfFamily(nftTable4, nftables.TableFamilyIPv4); err == nil {
					t.Errorf("%s, both flags off: nftables table %s left", mode, nftTable4)
				}
			}
		})
		inNewNetns(t, func() {
			if err := newFirewall(nft).install(testRules); err != nil {
				t.Errorf("%s: install a previous run's rules: %v", mode, err)
				return
			}
			startFirewallWith(t, false, true, nft)
			postrtg, forward := nftChains(nftTable)
			if nft {
				if n := len(nftRulesOf(t, forward)); n != 2 {
					t.Errorf("nftables, forward rules on: %d forward rules, want 2", n)
				}
				c, _ := nftables.New()
				chains, _ := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
				for _, ch := range chains {
					if ch.Table.Name == nftTable4 && ch.Name == postrtg.Name {
						t.Errorf("nftables, masquerade off: chain %s left (%d rules)", ch.Name, len(nftRulesOf(t, postrtg)))
					}
				}
				return
			}
			if got := iptSave(t, "nat"); got != "" {
				t.Errorf("iptables, masquerade off: nat rules left:\n%s", got)
			}
			if got := iptSave(t, "filter"); strings.Count(got, "-A "+fwdChain) != 2 {
				t.Errorf("iptables, forward rules on: filter rules:\n%s", got)
			}
		})
	}
}
