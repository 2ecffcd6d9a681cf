package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// masqChain is flanneld's chain name, so felt and flanneld manage the same
// rules and an operator's knowledge carries over.
const masqChain = "FLANNEL-POSTRTG"

// masqRules are flanneld's --ip-masq rules (docs/flannel-compat.md §5), in order.
func masqRules(network, subnet netip.Prefix, randomFully bool) [][]string {
	n, s := network.String(), subnet.String()
	masq := []string{"-j", "MASQUERADE"}
	if randomFully {
		masq = append(masq, "--random-fully")
	}
	c := []string{"-m", "comment", "--comment", "flanneld masq"}
	rule := func(r ...string) []string { return append(append([]string{}, r...), c...) }
	return [][]string{
		rule("-m", "mark", "--mark", "0x4000/0x4000", "-j", "RETURN"),
		rule("-s", s, "-d", n, "-j", "RETURN"),
		rule("-s", n, "-d", s, "-j", "RETURN"),
		rule("!", "-s", n, "-d", s, "-j", "RETURN"),
		rule(append([]string{"-s", n, "!", "-d", "224.0.0.0/4"}, masq...)...),
		rule(append([]string{"!", "-s", n, "-d", n}, masq...)...),
	}
}

// ipMasq keeps flanneld's masquerade rules for one subnet. ensure runs on
// the resync goroutine and setSubnet on the lease keeper's: mu orders them.
type ipMasq struct {
	mu              sync.Mutex
	network, subnet netip.Prefix
	log             *zap.Logger
	randomFully     bool
}

func iptables(args ...string) (string, error) {
	cmd := exec.Command("iptables", append([]string{"-w", "5"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// ensure creates the chain and appends any missing rule. It is idempotent,
// so a periodic resync repairs rules someone deleted, as flanneld does.
func (m *ipMasq) ensure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ensureLocked()
}

// setSubnet moves the rules to a re-acquired lease's subnet: the old
// subnet's rules are deleted, the new ones added.
func (m *ipMasq) setSubnet(sn netip.Prefix) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sn == m.subnet {
		return nil
	}
	for _, r := range masqRules(m.network, m.subnet, m.randomFully) {
		iptables(append([]string{"-t", "nat", "-D", masqChain}, r...)...) // already gone: fine
	}
	m.subnet = sn
	return m.ensureLocked()
}

func (m *ipMasq) ensureLocked() error {
	err := ensureChain("nat", "POSTROUTING", masqChain, "flanneld masq", masqRules(m.network, m.subnet, m.randomFully))
	if err != nil && m.randomFully && strings.Contains(err.Error(), "random-fully") {
		m.randomFully = false // an iptables without --random-fully: flanneld falls back the same way
		return m.ensureLocked()
	}
	return err
}

// ensureChain makes chain in table, jumped to from the built-in chain from
// (with comment), and appends each rule it lacks. Idempotent.
func ensureChain(table, from, chain, comment string, rules [][]string) error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("the iptables command is missing: install the iptables package (%w)", err)
	}
	iptables("-t", table, "-N", chain) // exists already: fine
	jump := []string{from, "-m", "comment", "--comment", comment, "-j", chain}
	if _, err := iptables(append([]string{"-t", table, "-C"}, jump...)...); err != nil {
		if out, err := iptables(append([]string{"-t", table, "-A"}, jump...)...); err != nil {
			return fmt.Errorf("iptables: add %s jump to %s: %s: %w", from, chain, out, err)
		}
	}
	for _, r := range rules {
		if _, err := iptables(append([]string{"-t", table, "-C", chain}, r...)...); err == nil {
			continue
		}
		if out, err := iptables(append([]string{"-t", table, "-A", chain}, r...)...); err != nil {
			return fmt.Errorf("iptables: add rule %v to %s: %s: %w", r, chain, out, err)
		}
	}
	return nil
}

// fwdChain and fwdRules are flanneld's --iptables-forward-rules: accept
// forwarded traffic from and to the Network, so that a FORWARD policy of
// DROP (Docker sets one) does not drop container traffic into the overlay.
const fwdChain = "FLANNEL-FWD"

func fwdRules(network netip.Prefix) [][]string {
	c := []string{"-m", "comment", "--comment", "flanneld forward"}
	n := network.String()
	return [][]string{
		append([]string{"-s", n, "-j", "ACCEPT"}, c...),
		append([]string{"-d", n, "-j", "ACCEPT"}, c...),
	}
}

func ensureForward(network netip.Prefix) error {
	return ensureChain("filter", "FORWARD", fwdChain, "flanneld forward", fwdRules(network))
}

// run keeps the rules in place every interval until ctx ends.
func (m *ipMasq) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.ensure(); err != nil {
				m.log.Warn("ip-masq resync failed", zap.Error(err))
			}
		}
	}
}
