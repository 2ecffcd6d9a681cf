package lease

import (
	"fmt"
	"net/netip"
)

// The rules CheckPeer enforces, as fixed short labels (for counters).
const (
	RuleOutsideNetwork = "outside_network" // the subnet is not inside the pool's Network
	RuleSubnetLen      = "subnet_len"      // the subnet is not exactly SubnetLen bits
	RuleHostBits       = "host_bits"       // the subnet's address has host bits set
	RuleOwnSubnet      = "own_subnet"      // the subnet overlaps this node's own
)

// PeerError is a lease CheckPeer refused. Its message names the lease, the
// field, the value and the rule, e.g.
//
//	lease 0.0.0.0/1: Subnet 0.0.0.0/1: must lie inside Network 10.5.0.0/16
type PeerError struct {
	Lease  netip.Prefix // the lease's key subnet
	Field  string       // "Subnet" or "IPv6Subnet"
	Value  netip.Prefix
	Rule   string // one of the Rule constants
	Detail string // the rule in words
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("lease %s: %s %s: %s", e.Lease, e.Field, e.Value, e.Detail)
}

// CheckPeer decides whether another node's lease l may enter the peer
// table of a node that holds own under cfg. A peer's subnet decides which
// destinations go to it and which inner sources it may send, so it must be
// one the pool could have handed out: inside Network, exactly SubnetLen bits
// with host bits zero, and apart from own. (The IPv6 subnet likewise against
// IPv6Network and IPv6SubnetLen, when cfg enables IPv6.)
//
// Two leases that pass are equal or disjoint (both are aligned blocks of one
// length), so a lease that passes cannot overlap another live lease except by
// naming the same subnet, which is one key in etcd. SubnetMin and SubnetMax are
// not checked: narrowing them leaves live leases outside the range until their
// nodes restart, and those leases are still disjoint from every other.
func CheckPeer(cfg *Config, own, l Lease) error {
	if cfg == nil {
		return fmt.Errorf("lease %s: no network config to check it against", leaseKey(l))
	}
	if !cfg.EnableIPv4 {
		// IPv6-only: the key's IPv4 half must be flanneld's empty one.
		if l.Subnet.IsValid() {
			return &PeerError{Lease: leaseKey(l), Field: "Subnet", Value: l.Subnet, Rule: RuleOutsideNetwork,
				Detail: "must be empty (0.0.0.0-0) with EnableIPv4 false"}
		}
		return pool6.checkPeer(l, "IPv6Subnet", l.IPv6Subnet, cfg.IPv6Network, cfg.IPv6SubnetLen, own.IPv6Subnet)
	}
	if err := pool4.checkPeer(l, "Subnet", l.Subnet, cfg.Network, cfg.SubnetLen, own.Subnet); err != nil {
		return err
	}
	if !cfg.EnableIPv6 || !l.IPv6Subnet.IsValid() {
		return nil // an IPv4-only node neither routes nor checks IPv6 subnets
	}
	return pool6.checkPeer(l, "IPv6Subnet", l.IPv6Subnet, cfg.IPv6Network, cfg.IPv6SubnetLen, own.IPv6Subnet)
}

func (p pool) checkPeer(l Lease, field string, sn, network netip.Prefix, subnetLen int, own netip.Prefix) error {
	fail := func(rule, detail string, args ...any) error {
		return &PeerError{Lease: leaseKey(l), Field: field, Value: sn, Rule: rule, Detail: fmt.Sprintf(detail, args...)}
	}
	switch {
	case !sn.IsValid() || sn.Addr().Is4() != p.is4 || sn.Addr().Is4In6() || sn.Addr().Zone() != "":
		return fail(RuleOutsideNetwork, "must be an %s subnet inside %s %s", family(p.is4), p.network, network)
	case sn.Bits() < network.Bits() || !network.Contains(sn.Addr()):
		return fail(RuleOutsideNetwork, "must lie inside %s %s", p.network, network)
	case sn.Bits() != subnetLen:
		return fail(RuleSubnetLen, "must be exactly /%d (%s)", subnetLen, p.subnetLen)
	case sn.Masked() != sn:
		return fail(RuleHostBits, "host bits must be zero (%s)", sn.Masked())
	case own.IsValid() && sn.Overlaps(own):
		return fail(RuleOwnSubnet, "overlaps this node's own subnet %s", own)
	}
	return nil
}
