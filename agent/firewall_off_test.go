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

// startFirewallWith runs startFirewall for a dual-stack node with these
// flags and firewall mode (nftables when nft).
func startFirewallWith(t *testing.T, masq, forward, nft bool) {
	t.Helper()
	nc := &lease.Config{Network: testRules.network, IPv6Network: testRules6.network, EnableIPv4: true, EnableIPv6: true,
		EnableNFTables: nft}
	startFirewallOf(t, &node{cfg: Config{IPMasq: masq, ForwardRules: forward, Resync: time.Hour}, log: zap.NewNop(),
		netCfg: nc, own: lease.Lease{Subnet: testRules.subnet, IPv6Subnet: testRules6.subnet}})
}

// startFirewallOf runs n's startFirewall; the resync goroutines end at once
// (they would run outside the test's namespace).
func startFirewallOf(t *testing.T, n *node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := newGroup(ctx)
	if err := n.startFirewall(g); err != nil {
		t.Errorf("startFirewall: %v", err)
	}
	g.wait()
}

// installPrevious installs a previous run's full rule set of both families.
func installPrevious(t *testing.T, mode string, fw firewall) bool {
	t.Helper()
	for _, rs := range []ruleSet{testRules, testRules6} {
		if err := fw.install(rs); err != nil {
			t.Errorf("%s: install a previous run's rules for %s: %v", mode, rs.network, err)
			return false
		}
	}
	return true
}

// TestFirewallCleanedWhenOff (throwaway namespaces, a dual-stack node): as
// flanneld, felt removes felt's rules that the flags no longer ask for:
// with --ip-masq=false and --iptables-forward-rules=false every chain of
// both modes and both families goes; with the masquerade off and forward
// rules on, the nat chains (nftables: the postrtg chains) go and the
// forward rules stay.
func TestFirewallCleanedWhenOff(t *testing.T) {
	for _, nft := range []bool{false, true} {
		mode := map[bool]string{false: "iptables", true: "nftables"}[nft]
		inNewNetns(t, func() {
			if !installPrevious(t, mode, newFirewall(nft)) {
				return
			}
			startFirewallWith(t, false, false, nft)
			for _, v6 := range []bool{false, true} {
				if got := iptSave(t, v6, "nat") + iptSave(t, v6, "filter"); got != "" {
					t.Errorf("%s, both flags off: %s rules left:\n%s", mode, iptCmd(v6), got)
				}
			}
			if c, err := nftables.New(); err == nil {
				for _, tb := range []*nftables.Table{nftTableV4, nftTableV6} {
					if _, err := c.ListTableOfFamily(tb.Name, tb.Family); err == nil {
						t.Errorf("%s, both flags off: nftables table %s left", mode, tb.Name)
					}
				}
			}
		})
		inNewNetns(t, func() {
			if !installPrevious(t, mode, newFirewall(nft)) {
				return
			}
			startFirewallWith(t, false, true, nft)
			for _, tb := range []*nftables.Table{nftTableV4, nftTableV6} {
				if nft {
					nftForwardOnly(t, tb)
					continue
				}
				v6 := tb == nftTableV6
				if got := iptSave(t, v6, "nat"); got != "" {
					t.Errorf("%s, masquerade off: nat rules left:\n%s", iptCmd(v6), got)
				}
				if got := iptSave(t, v6, "filter"); strings.Count(got, "-A "+fwdChain) != 2 {
					t.Errorf("%s, forward rules on: filter rules:\n%s", iptCmd(v6), got)
				}
			}
		})
	}
}

// nftForwardOnly checks that table tb holds its two forward rules and no
// postrtg chain.
func nftForwardOnly(t *testing.T, tb *nftables.Table) {
	t.Helper()
	postrtg, forward := nftChains(tb)
	if n := len(nftRulesOf(t, forward)); n != 2 {
		t.Errorf("nftables %s, forward rules on: %d forward rules, want 2", tb.Name, n)
	}
	c, _ := nftables.New()
	chains, _ := c.ListChainsOfTableFamily(tb.Family)
	for _, ch := range chains {
		if ch.Table.Name == tb.Name && ch.Name == postrtg.Name {
			t.Errorf("nftables %s, masquerade off: chain %s left (%d rules)", tb.Name, ch.Name, len(nftRulesOf(t, postrtg)))
		}
	}
}

// TestFirewallIPv6Only (throwaway namespace): an IPv6-only node keeps the
// IPv6 rules and writes none for IPv4.
func TestFirewallIPv6Only(t *testing.T) {
	inNewNetns(t, func() {
		nc := &lease.Config{IPv6Network: testRules6.network, EnableIPv6: true}
		n := &node{cfg: Config{IPMasq: true, ForwardRules: true, Resync: time.Hour}, log: zap.NewNop(), netCfg: nc,
			own: lease.Lease{IPv6Subnet: testRules6.subnet}}
		startFirewallOf(t, n)
		if n.fw != nil || n.fw6 == nil {
			t.Errorf("keepers: IPv4 %v, IPv6 %v; want IPv6 only", n.fw != nil, n.fw6 != nil)
		}
		if got := iptSave(t, false, "nat") + iptSave(t, false, "filter"); got != "" {
			t.Errorf("IPv4 rules on an IPv6-only node:\n%s", got)
		}
		if got := byChain(iptSave(t, true, "nat")); got != wantNat6 {
			t.Errorf("ip6tables nat:\n%s\nwant:\n%s", got, wantNat6)
		}
	})
}
