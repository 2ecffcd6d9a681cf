package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// iptFirewall is flanneld's iptables traffic manager: chains FLANNEL-POSTRTG
// (nat) and FLANNEL-FWD (filter), each jumped to from its built-in chain, and
// written through iptables-restore --noflush so a rebuild is one transaction;
// ip6tables and ip6tables-restore for the IPv6 Network, as flanneld.
type iptFirewall struct{}

func (iptFirewall) mode() string { return "iptables" }

// iptCmd is the iptables command of a family.
func iptCmd(v6 bool) string {
	if v6 {
		return "ip6tables"
	}
	return "iptables"
}

// ipt runs the family's iptables command, waiting up to 5 s for its lock.
func ipt(v6 bool, args ...string) (string, error) {
	return runCmd(nil, iptCmd(v6), append([]string{"-w", "5"}, args...)...)
}

// iptRule is one rule: the chain it goes in and its spec.
type iptRule struct {
	table, chain string
	spec         []string
}

// masqRules are flanneld's --ip-masq rules (pkg/trafficmngr/iptables), in
// order, after the POSTROUTING jump; the family's multicast range is never
// masqueraded.
func masqRules(rs ruleSet) [][]string {
	n, s := rs.network.String(), rs.subnet.String()
	c := []string{"-m", "comment", "--comment", "flanneld masq"}
	masq := []string{"-j", "MASQUERADE"}
	if rs.randomFully {
		masq = append(masq, "--random-fully")
	}
	r := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	ret := []string{"-j", "RETURN"}
	return [][]string{
		r([]string{"-m", "mark", "--mark", "0x4000/0x4000"}, c, ret),
		r([]string{"-s", s, "-d", n}, c, ret),
		r([]string{"-s", n, "-d", s}, c, ret),
		r([]string{"!", "-s", n, "-d", s}, c, ret),
		r([]string{"-s", n, "!", "-d", rs.multicast().String()}, c, masq),
		r([]string{"!", "-s", n, "-d", n}, c, masq),
	}
}

// fwdRules are flanneld's --iptables-forward-rules: accept forwarded traffic
// from and to the Network, so that a FORWARD policy of DROP (Docker sets
// one) does not drop container traffic into the overlay.
func fwdRules(network netip.Prefix) [][]string {
	c := []string{"-m", "comment", "--comment", "flanneld forward"}
	n := network.String()
	return [][]string{
		append(append([]string{"-s", n}, c...), "-j", "ACCEPT"),
		append(append([]string{"-d", n}, c...), "-j", "ACCEPT"),
	}
}

// iptRules is rs as flanneld lays it out: per table, the jump from the
// built-in chain first, then the chain's rules.
func iptRules(rs ruleSet) []iptRule {
	var out []iptRule
	if rs.masq {
		out = append(out, iptRule{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "flanneld masq", "-j", masqChain}})
		for _, r := range masqRules(rs) {
			out = append(out, iptRule{"nat", masqChain, r})
		}
	}
	if rs.forward {
		out = append(out, iptRule{"filter", "FORWARD", []string{"-m", "comment", "--comment", "flanneld forward", "-j", fwdChain}})
		for _, r := range fwdRules(rs.network) {
			out = append(out, iptRule{"filter", fwdChain, r})
		}
	}
	return out
}

func runCmd(stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func needIptables(v6 bool) error {
	if _, err := exec.LookPath(iptCmd(v6) + "-restore"); err != nil {
		return fmt.Errorf("the %s-restore command is missing: install the iptables package, or set \"EnableNFTables\": true in the network config (%w)", iptCmd(v6), err)
	}
	return nil
}

func exists(v6 bool, r iptRule) bool {
	_, err := ipt(v6, append([]string{"-t", r.table, "-C", r.chain}, r.spec...)...)
	return err == nil
}

// install writes, per table, one iptables-restore --noflush transaction:
// declaring felt's chain creates or flushes it, the jump is deleted if present
// and appended (as flanneld does), then the chain's rules follow in order.
func (iptFirewall) install(rs ruleSet) error {
	v6 := rs.v6()
	if err := needIptables(v6); err != nil {
		return err
	}
	byTable := map[string][]iptRule{}
	var tables []string
	for _, r := range iptRules(rs) {
		if _, ok := byTable[r.table]; !ok {
			tables = append(tables, r.table)
		}
		byTable[r.table] = append(byTable[r.table], r)
	}
	for _, table := range tables {
		var b strings.Builder
		fmt.Fprintf(&b, "*%s\n", table)
		for _, r := range byTable[table] {
			if r.chain == masqChain || r.chain == fwdChain {
				fmt.Fprintf(&b, ":%s - [0:0]\n", r.chain)
				break
			}
		}
		for _, r := range byTable[table] {
			if r.chain != masqChain && r.chain != fwdChain && exists(v6, r) {
				fmt.Fprintf(&b, "-D %s %s\n", r.chain, quoteArgs(r.spec))
			}
			fmt.Fprintf(&b, "-A %s %s\n", r.chain, quoteArgs(r.spec))
		}
		b.WriteString("COMMIT\n")
		if out, err := runCmd([]byte(b.String()), iptCmd(v6)+"-restore", "-w", "5", "--noflush"); err != nil {
			return fmt.Errorf("%s-restore (table %s): %s: %w", iptCmd(v6), table, out, err)
		}
	}
	return removeIptChains(v6, !rs.masq, !rs.forward)
}

// remove deletes felt's iptables chains and their jumps.
func (iptFirewall) remove() error { return removeIptables() }

// intact is flanneld's check: each chain exists and holds each rule.
func (iptFirewall) intact(rs ruleSet) (bool, error) {
	v6 := rs.v6()
	if err := needIptables(v6); err != nil {
		return false, err
	}
	for _, r := range iptRules(rs) {
		if !exists(v6, r) {
			return false, nil
		}
	}
	return true, nil
}

// removeOther deletes flanneld's nftables tables.
func (iptFirewall) removeOther() error { return nftDeleteTables() }

// removeIptables deletes felt's iptables and ip6tables chains and their
// jumps (for nftables mode). Missing chains are fine.
func removeIptables() error {
	return errors.Join(removeIptChains(false, true, true), removeIptChains(true, true, true))
}

// removeIptChains deletes the family's masquerade chain (nat) if masq, its
// forward chain (filter) if forward, each with its jump. Missing chains
// are fine.
func removeIptChains(v6, masq, forward bool) error {
	if _, err := exec.LookPath(iptCmd(v6)); err != nil {
		return nil // no iptables: nothing of it to remove
	}
	var errs []error
	for _, t := range []struct {
		on                          bool
		table, from, chain, comment string
	}{
		{masq, "nat", "POSTROUTING", masqChain, "flanneld masq"},
		{forward, "filter", "FORWARD", fwdChain, "flanneld forward"},
	} {
		if !t.on {
			continue
		}
		jump := []string{"-t", t.table, "-D", t.from, "-m", "comment", "--comment", t.comment, "-j", t.chain}
		for i := 0; i < 10; i++ { // every copy of the jump
			if _, err := ipt(v6, jump...); err != nil {
				break
			}
		}
		if _, err := ipt(v6, "-t", t.table, "-F", t.chain); err != nil {
			continue // no such chain
		}
		if out, err := ipt(v6, "-t", t.table, "-X", t.chain); err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s -X %s: %s: %w", iptCmd(v6), t.table, t.chain, out, err))
		}
	}
	return errors.Join(errs...)
}

// quoteArgs joins a rule spec for iptables-restore, quoting arguments
// with spaces (the comments).
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"") {
			a = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
