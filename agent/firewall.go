package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Chain and table names are flanneld's, so felt and flanneld manage the same
// rules and an operator's knowledge carries over (docs/flannel-interop.md).
const (
	masqChain  = "FLANNEL-POSTRTG" // iptables nat
	fwdChain   = "FLANNEL-FWD"     // iptables filter
	nftTable4  = "flannel-ipv4"    // nftables, family ip
	nftTable6  = "flannel-ipv6"    // nftables, family ip6
	nftPostrtg = "postrtg"
	nftForward = "forward"
)

// ruleSet is what the agent keeps in the firewall: flanneld's --ip-masq and
// --iptables-forward-rules rules for one Network and own subnet of one
// family (the Network's: iptables or ip6tables, table ip or ip6).
type ruleSet struct {
	network, subnet netip.Prefix
	masq, forward   bool
	randomFully     bool // MASQUERADE --random-fully (not with --ip-masq-fully-random-disable)
}

// v6 reports whether rs is the IPv6 family's.
func (rs ruleSet) v6() bool { return rs.network.Addr().Is6() }

// multicast is the family's multicast range, which flanneld never
// masquerades.
func (rs ruleSet) multicast() netip.Prefix {
	if rs.v6() {
		return netip.MustParsePrefix("ff00::/8")
	}
	return netip.MustParsePrefix("224.0.0.0/4")
}

// firewall is one of flanneld's two traffic managers (iptables or nftables).
// install and intact work on rs's family; the removals on both families.
type firewall interface {
	// mode names it in logs: "iptables" or "nftables".
	mode() string
	// removeOther deletes what the other mode left (flanneld's CleanUp of
	// the manager it does not use), so a switch leaves no stale rules.
	removeOther() error
	// remove deletes all of this mode's felt chains (both flags off).
	remove() error
	// install flushes felt's chains and writes rs whole, in flanneld's
	// order, in one transaction, and deletes the chain of a flag that is
	// off (a previous run's masquerade, say).
	install(rs ruleSet) error
	// intact reports whether every rule of rs is in place.
	intact(rs ruleSet) (bool, error)
}

// fwKeeper keeps a ruleSet in a firewall: install at start, then every
// resync period a check that rebuilds the whole set when a rule is missing
// (flanneld's ensure: rebuilding, not appending, keeps the order). check runs
// on the resync goroutine and setSubnet on the lease keeper's: mu orders them.
type fwKeeper struct {
	fw  firewall
	log *zap.Logger

	mu sync.Mutex
	rs ruleSet
}

// start removes the other mode's rules and installs rs: felt's chains are
// flushed first, which drops a previous subnet's rules as well.
func (k *fwKeeper) start(rs ruleSet) error {
	if err := k.fw.removeOther(); err != nil {
		k.log.Warn("could not remove the other firewall mode's rules", zap.Error(err))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rs = rs
	return k.installLocked()
}

func (k *fwKeeper) installLocked() error {
	err := k.fw.install(k.rs)
	if err != nil && k.rs.masq && k.rs.randomFully && lacksRandomFully(err) {
		// An iptables or kernel without fully-random masquerade: flanneld
		// checks for it and falls back to plain MASQUERADE the same way.
		// Only for such an error: after another (a held xtables lock, say)
		// the next resync tries the fully-random rules again.
		k.rs.randomFully = false
		if err2 := k.fw.install(k.rs); err2 == nil {
			k.log.Warn("masquerade without --random-fully: this firewall does not support it", zap.Error(err))
			return nil
		}
		k.rs.randomFully = true
	}
	return err
}

// lacksRandomFully reports whether an install error may mean that the
// firewall has no fully-random masquerade: iptables names the option it
// does not know; a kernel without the flag refuses the rule.
func lacksRandomFully(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "random") || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EINVAL)
}

// check rebuilds the set if a rule is missing; it reports whether it did.
func (k *fwKeeper) check() (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ok, err := k.fw.intact(k.rs)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	k.log.Info("some firewall rules are missing; rebuilding them in order", zap.String("mode", k.fw.mode()))
	return true, k.installLocked()
}

// setSubnet moves the rules to a re-acquired lease's subnet.
func (k *fwKeeper) setSubnet(sn netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sn == k.rs.subnet {
		return nil
	}
	k.rs.subnet = sn
	return k.installLocked()
}

// run checks the rules every period until ctx ends.
func (k *fwKeeper) run(ctx context.Context, period time.Duration) {
	every(ctx, period, func() {
		if _, err := k.check(); err != nil {
			k.log.Warn("firewall resync failed", zap.String("mode", k.fw.mode()), zap.Error(err))
		}
	})
}

// newFirewall picks the mode as flanneld does: nftables when the network
// config says EnableNFTables, else iptables.
func newFirewall(nft bool) firewall {
	if nft {
		return nftFirewall{}
	}
	return iptFirewall{}
}

func (rs ruleSet) String() string {
	return fmt.Sprintf("network %s subnet %s masq %v forward %v random-fully %v", rs.network, rs.subnet, rs.masq, rs.forward, rs.randomFully)
}
