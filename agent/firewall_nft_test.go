package agent

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"go.uber.org/zap"
)

// nftRulesOf lists the rules of a chain, or nil if absent.
func nftRulesOf(t *testing.T, chain *nftables.Chain) []*nftables.Rule {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(chain.Table, chain)
	if err != nil {
		return nil
	}
	return rules
}

// nftText prints a rule as read back from the kernel in nft's syntax, for
// the expressions felt writes ("ip6 saddr != fd00:5::/48 ip6 daddr
// fd00:5:0:3::/64 return"); anything else prints as "?".
func nftText(es []expr.Any) string {
	var out []string
	for i := 0; i < len(es); i++ {
		switch e := es[i].(type) {
		case *expr.Meta:
			c, ok := next[*expr.Cmp](es, i+1)
			if !ok || e.Key != expr.MetaKeyMARK || len(c.Data) != 4 {
				return "?"
			}
			out = append(out, fmt.Sprintf("meta mark 0x%x", binary.NativeEndian.Uint32(c.Data)))
			i++
		case *expr.Payload:
			// An address prefix: the field's bytes, a mask and a compare;
			// or, for a whole-byte prefix (as nft writes it), only the
			// prefix's bytes and a compare.
			fam, field, size := "ip", map[uint32]string{12: "saddr", 16: "daddr"}[e.Offset], 4
			if e.Offset == 8 || e.Offset == 24 {
				fam, field, size = "ip6", map[uint32]string{8: "saddr", 24: "daddr"}[e.Offset], 16
			}
			b, masked := next[*expr.Bitwise](es, i+1)
			step := 1
			if masked {
				step = 2
			}
			c, ok := next[*expr.Cmp](es, i+step)
			if !ok || e.Base != expr.PayloadBaseNetworkHeader || field == "" || len(c.Data) != int(e.Len) || int(e.Len) > size {
				return "?"
			}
			ones := 8 * int(e.Len)
			if masked {
				if int(e.Len) != size {
					return "?"
				}
				ones = 0
				for _, m := range b.Mask {
					ones += bits.OnesCount8(m)
				}
			}
			a, _ := netip.AddrFromSlice(append(slices.Clone(c.Data), make([]byte, size-len(c.Data))...))
			op := ""
			if c.Op == expr.CmpOpNeq {
				op = "!= "
			}
			out = append(out, fmt.Sprintf("%s %s %s%s", fam, field, op, netip.PrefixFrom(a, ones)))
			i += step
		case *expr.Verdict:
			out = append(out, map[expr.VerdictKind]string{expr.VerdictReturn: "return", expr.VerdictAccept: "accept"}[e.Kind])
		case *expr.Masq:
			m := "masquerade"
			if e.FullyRandom {
				m += " fully-random"
			}
			out = append(out, m)
		default:
			return "?"
		}
	}
	return strings.Join(out, " ")
}

func next[T expr.Any](es []expr.Any, i int) (T, bool) {
	var zero T
	if i >= len(es) {
		return zero, false
	}
	e, ok := es[i].(T)
	return e, ok
}

// nftListing is a chain's rules in nft's syntax, one a line.
func nftListing(t *testing.T, chain *nftables.Chain) string {
	t.Helper()
	var lines []string
	for _, r := range nftRulesOf(t, chain) {
		lines = append(lines, nftText(r.Exprs))
	}
	return strings.Join(lines, "\n")
}

// wantNft is flanneld's nftables rule set for rs (postrtg, forward) as nft
// prints it (pkg/trafficmngr/nftables in flannel; its fourth rule is not
// the iptables one, docs/flannel-interop.md).
func wantNft(rs ruleSet) (postrtg, forward string) {
	f := "ip"
	if rs.v6() {
		f = "ip6"
	}
	n, s, mc := rs.network, rs.subnet, rs.multicast()
	postrtg = strings.Join([]string{
		"meta mark 0x4000 return",
		fmt.Sprintf("%[1]s saddr %[2]s %[1]s daddr %[3]s return", f, s, n),
		fmt.Sprintf("%[1]s saddr %[2]s %[1]s daddr %[3]s return", f, n, s),
		fmt.Sprintf("%[1]s saddr != %[2]s %[1]s daddr %[3]s return", f, s, n),
		fmt.Sprintf("%[1]s saddr %[2]s %[1]s daddr != %[3]s masquerade fully-random", f, n, mc),
		fmt.Sprintf("%[1]s saddr != %[2]s %[1]s daddr %[2]s masquerade fully-random", f, n),
	}, "\n")
	forward = fmt.Sprintf("%[1]s saddr %[2]s accept\n%[1]s daddr %[2]s accept", f, n)
	return postrtg, forward
}

// TestNftablesRuleSet, for each family: EnableNFTables writes flanneld's
// table (flannel-ipv4, family ip; flannel-ipv6, family ip6) and chains
// through netlink, with flanneld's rules in order as the kernel gives them
// back; a rule deleted by hand is back after the check; iptables chains of
// a previous iptables-mode run are removed, and switching back removes the
// nftables table.
func TestNftablesRuleSet(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) { inNewNetns(t, func() { nftablesRuleSet(t, f.rs) }) })
	}
}

func nftablesRuleSet(t *testing.T, rs ruleSet) {
	v6 := rs.v6()
	if err := (iptFirewall{}).install(rs); err != nil {
		t.Errorf("iptables install: %v", err)
		return
	}
	k := &fwKeeper{fw: nftFirewall{}, log: zap.NewNop()}
	if err := k.start(rs); err != nil {
		t.Errorf("start: %v", err)
		return
	}
	if got := iptSave(t, v6, "nat") + iptSave(t, v6, "filter"); got != "" {
		t.Errorf("iptables rules left after switching to nftables:\n%s", got)
	}
	table, other := nftTableV4, nftTableV6
	if v6 {
		table, other = other, table
	}
	c, _ := nftables.New()
	if _, err := c.ListTableOfFamily(other.Name, other.Family); err == nil {
		t.Errorf("table %s created for a %s network", other.Name, rs.network)
	}
	postrtg, forward := nftChains(table)
	wantP, wantF := wantNft(rs)
	if got := nftListing(t, postrtg); got != wantP {
		t.Errorf("%s postrtg:\n%s\nwant:\n%s", table.Name, got, wantP)
	}
	if got := nftListing(t, forward); got != wantF {
		t.Errorf("%s forward:\n%s\nwant:\n%s", table.Name, got, wantF)
	}
	if rebuilt, err := k.check(); err != nil || rebuilt {
		t.Errorf("check with all rules: rebuilt %v, err %v", rebuilt, err)
	}
	rules := nftRulesOf(t, postrtg)
	if len(rules) < 3 {
		t.Errorf("%s postrtg has %d rules", table.Name, len(rules))
		return
	}
	nftDelRule(t, c, rules[2])
	if got := nftListing(t, postrtg); got == wantP {
		t.Errorf("rule not deleted by hand")
	}
	if rebuilt, err := k.check(); err != nil || !rebuilt {
		t.Errorf("check after a rule was deleted: rebuilt %v, err %v", rebuilt, err)
	}
	if got := nftListing(t, postrtg); got != wantP {
		t.Errorf("after the resync, postrtg:\n%s\nwant:\n%s", got, wantP)
	}
	// Back to iptables mode: the table goes.
	k2 := &fwKeeper{fw: iptFirewall{}, log: zap.NewNop()}
	if err := k2.start(rs); err != nil {
		t.Errorf("iptables start: %v", err)
	}
	if _, err := c.ListTableOfFamily(table.Name, table.Family); err == nil {
		t.Errorf("table %s still there in iptables mode", table.Name)
	}
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

// TestNftAddrEncoding pins how a prefix is encoded, as nft (and so
// flanneld) encodes it: a whole-byte prefix loads and compares only its
// bytes; any other length loads the whole address, masks it and compares
// it whole.
func TestNftAddrEncoding(t *testing.T) {
	for _, tc := range []struct {
		prefix   string
		dst      bool
		off, len uint32
		mask     []byte // nil: no Bitwise
		data     []byte
	}{
		{"10.5.0.0/16", false, 12, 2, nil, []byte{10, 5}},
		{"10.5.3.0/24", true, 16, 3, nil, []byte{10, 5, 3}},
		{"10.5.16.0/20", false, 12, 4, []byte{255, 255, 240, 0}, []byte{10, 5, 16, 0}},
		{"224.0.0.0/4", true, 16, 4, []byte{240, 0, 0, 0}, []byte{224, 0, 0, 0}},
		{"fd00:5::/48", true, 24, 6, nil, []byte{0xfd, 0, 0, 5, 0, 0}},
	} {
		es := nftAddr(tc.dst, netip.MustParsePrefix(tc.prefix), false)
		p, ok := es[0].(*expr.Payload)
		if !ok || p.Offset != tc.off || p.Len != tc.len {
			t.Errorf("%s: load %+v, want offset %d, %d bytes", tc.prefix, es[0], tc.off, tc.len)
			continue
		}
		c := es[len(es)-1].(*expr.Cmp)
		if !bytes.Equal(c.Data, tc.data) {
			t.Errorf("%s: compares %v, want %v", tc.prefix, c.Data, tc.data)
		}
		b, masked := es[1].(*expr.Bitwise)
		if masked != (tc.mask != nil) || len(es) != 2+btoi(masked) || (masked && !bytes.Equal(b.Mask, tc.mask)) {
			t.Errorf("%s: %d expressions (mask %v), want mask %v", tc.prefix, len(es), b, tc.mask)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
