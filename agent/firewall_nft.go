package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftFirewall is flanneld's nftables traffic manager (EnableNFTables in the
// network config), through netlink (github.com/google/nftables), not the nft
// command: per family a table, "flannel-ipv4" (family ip) or "flannel-ipv6"
// (family ip6), with chain "postrtg" (nat, postrouting, priority srcnat) for
// --ip-masq and chain "forward" (filter, forward, priority filter) for
// --iptables-forward-rules. felt creates a family's table only when the
// network carries that family (flanneld creates both, the unused one empty).
type nftFirewall struct{}

func (nftFirewall) mode() string { return "nftables" }

var (
	nftTableV4 = &nftables.Table{Name: nftTable4, Family: nftables.TableFamilyIPv4}
	nftTableV6 = &nftables.Table{Name: nftTable6, Family: nftables.TableFamilyIPv6}
)

// nftTableOf is the table of rs's family.
func nftTableOf(rs ruleSet) *nftables.Table {
	if rs.v6() {
		return nftTableV6
	}
	return nftTableV4
}

func nftChains(t *nftables.Table) (postrtg, forward *nftables.Chain) {
	postrtg = &nftables.Chain{Name: nftPostrtg, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	forward = &nftables.Chain{Name: nftForward, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}
	return postrtg, forward
}

// nftAddr matches the source (or, with dst, the destination) address of
// the IP header against p: "ip saddr 10.5.0.0/16", "ip6 daddr != ff00::/8"
// with neq. The offsets are those of the IPv4 and IPv6 headers.
func nftAddr(dst bool, p netip.Prefix, neq bool) []expr.Any {
	off := uint32(12) // IPv4 source address
	if p.Addr().Is6() {
		off = 8
	}
	n := uint32(p.Addr().BitLen() / 8)
	if dst {
		off += n
	}
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	addr := p.Masked().Addr().AsSlice()
	if bits := p.Bits(); bits > 0 && bits%8 == 0 {
		// A whole-byte prefix as nft (and so flanneld) encodes it: only
		// its bytes loaded and compared, no mask.
		k := uint32(bits / 8)
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: k},
			&expr.Cmp{Op: op, Register: 1, Data: addr[:k]},
		}
	}
	m := make([]byte, n)
	for i, bits := 0, p.Bits(); bits > 0; i, bits = i+1, bits-8 {
		m[i] = byte(0xff << max(8-bits, 0))
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: m, Xor: make([]byte, n)},
		&expr.Cmp{Op: op, Register: 1, Data: addr},
	}
}

func nftRule(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// nftMasqRules are flanneld's nftables masquerade rules, in order (ip6
// and ff00::/8 for IPv6):
//
//	meta mark 0x4000 return
//	ip saddr SUBNET ip daddr NETWORK return
//	ip saddr NETWORK ip daddr SUBNET return
//	ip saddr != SUBNET ip daddr NETWORK return
//	ip saddr NETWORK ip daddr != 224.0.0.0/4 masquerade fully-random
//	ip saddr != NETWORK ip daddr NETWORK masquerade fully-random
//
// The fourth rule is flanneld's nftables rule, read back from a running
// flanneld (v0.28.10), not its iptables one (! -s NETWORK -d SUBNET): a
// drop-in behaves as flanneld in the same mode (docs/flannel-interop.md).
func nftMasqRules(rs ruleSet) [][]expr.Any {
	mark := make([]byte, 4)
	binary.NativeEndian.PutUint32(mark, 0x4000) // the kernel compares the mark in host order
	ret := []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}
	masq := []expr.Any{&expr.Masq{FullyRandom: rs.randomFully}}
	n, s := rs.network, rs.subnet
	const src, dst = false, true
	return [][]expr.Any{
		nftRule([]expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark}}, ret),
		nftRule(nftAddr(src, s, false), nftAddr(dst, n, false), ret),
		nftRule(nftAddr(src, n, false), nftAddr(dst, s, false), ret),
		nftRule(nftAddr(src, s, true), nftAddr(dst, n, false), ret),
		nftRule(nftAddr(src, n, false), nftAddr(dst, rs.multicast(), true), masq),
		nftRule(nftAddr(src, n, true), nftAddr(dst, n, false), masq),
	}
}

// nftFwdRules: ip saddr NETWORK accept; ip daddr NETWORK accept.
func nftFwdRules(rs ruleSet) [][]expr.Any {
	acc := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	return [][]expr.Any{
		nftRule(nftAddr(false, rs.network, false), acc),
		nftRule(nftAddr(true, rs.network, false), acc),
	}
}

// install adds the table and chains (kept if they exist), flushes the chains
// and adds the rules, all in one netlink batch: the kernel applies it whole
// or not at all.
func (nftFirewall) install(rs ruleSet) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := nftTableOf(rs)
	c.AddTable(t)
	postrtg, forward := nftChains(t)
	if rs.masq {
		c.AddChain(postrtg)
		c.FlushChain(postrtg)
		for _, e := range nftMasqRules(rs) {
			c.AddRule(&nftables.Rule{Table: t, Chain: postrtg, Exprs: e})
		}
	}
	if rs.forward {
		c.AddChain(forward)
		c.FlushChain(forward)
		for _, e := range nftFwdRules(rs) {
			c.AddRule(&nftables.Rule{Table: t, Chain: forward, Exprs: e})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: set up table %s: %w", t.Name, err)
	}
	return nftDeleteChains(t, !rs.masq, !rs.forward)
}

// remove deletes flanneld's nftables tables.
func (nftFirewall) remove() error { return nftDeleteTables() }

// nftDeleteChains deletes the postrtg chain if masq and the forward chain
// if forward, when they exist in table t.
func nftDeleteChains(t *nftables.Table, masq, forward bool) error {
	if !masq && !forward {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return fmt.Errorf("nftables: list chains: %w", err)
	}
	del := false
	for _, ch := range chains {
		if ch.Table.Name == t.Name && (masq && ch.Name == nftPostrtg || forward && ch.Name == nftForward) {
			c.FlushChain(ch)
			c.DelChain(ch)
			del = true
		}
	}
	if !del {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete a chain of a flag that is off in table %s: %w", t.Name, err)
	}
	return nil
}

// intact checks that each chain holds as many rules as felt put there: a
// rule deleted by hand (or a flushed chain, or a deleted table) is noticed.
func (nftFirewall) intact(rs ruleSet) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	t := nftTableOf(rs)
	postrtg, forward := nftChains(t)
	for _, want := range []struct {
		on    bool
		chain *nftables.Chain
		n     int
	}{{rs.masq, postrtg, len(nftMasqRules(rs))}, {rs.forward, forward, len(nftFwdRules(rs))}} {
		if !want.on {
			continue
		}
		rules, err := c.GetRules(t, want.chain)
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("nftables: list %s %s: %w", t.Name, want.chain.Name, err)
		}
		if len(rules) != want.n {
			return false, nil
		}
	}
	return true, nil
}

// removeOther deletes felt's (flanneld's) iptables and ip6tables chains.
func (nftFirewall) removeOther() error { return removeIptables() }

// nftDeleteTables deletes flanneld's nftables tables if they exist (for
// iptables mode).
func nftDeleteTables() error {
	c, err := nftables.New()
	if err != nil {
		return nil // no nftables netlink: nothing of it to remove
	}
	var errs []error
	for _, t := range []*nftables.Table{nftTableV4, nftTableV6} {
		if _, err := c.ListTableOfFamily(t.Name, t.Family); err != nil {
			continue // absent
		}
		c.DelTable(t)
		if err := c.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("nftables: delete table %s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}
