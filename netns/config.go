package netns

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
)

// Topology is how the hosts of a lab are joined.
type Topology int

const (
	// Bridge puts every host on one bridge in the current namespace, which
	// itself has the underlay's first address on it.
	Bridge Topology = iota
	// Pair joins exactly two hosts with one veth and nothing else: the
	// benchmark's "bare veth".
	Pair
)

func (t Topology) String() string {
	switch t {
	case Bridge:
		return "bridge"
	case Pair:
		return "pair"
	}
	return fmt.Sprintf("Topology(%d)", int(t))
}

// LabConfig describes a lab.
type LabConfig struct {
	// Name prefixes every namespace and link of the lab; unique per lab
	// (e.g. "ft12345"). Lower-case letters, digits; at most 12 characters.
	Name string
	// Hosts to create with the lab; more may join with AddHost.
	Hosts int
	// Underlay is the hosts' network, e.g. 10.250.7.0/24. The current
	// namespace gets .1 on the bridge; host i gets .(i+2).
	Underlay netip.Prefix
	// Topology: Bridge (default) or Pair.
	Topology Topology
	// WireLike turns the underlay veths into something like a real NIC:
	// no TSO/GSO/UDP segmentation, GRO on (see docs/performance.md).
	WireLike bool
	// MTU of the underlay links; 0 means 1500.
	MTU int
}

const maxNameLen = 12

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

func (c *LabConfig) check() error {
	if !nameRE.MatchString(c.Name) || len(c.Name) > maxNameLen {
		return fmt.Errorf("netns: LabConfig.Name %q: must be 1 to %d lower-case letters and digits, starting with a letter", c.Name, maxNameLen)
	}
	if c.Hosts < 0 {
		return fmt.Errorf("netns: LabConfig.Hosts %d: must not be negative", c.Hosts)
	}
	if c.Topology != Bridge && c.Topology != Pair {
		return fmt.Errorf("netns: LabConfig.Topology %v: must be Bridge or Pair", c.Topology)
	}
	if c.Topology == Pair && c.Hosts != 2 {
		return fmt.Errorf("netns: LabConfig.Hosts %d: a Pair lab has exactly 2 hosts", c.Hosts)
	}
	u := c.Underlay
	if !u.IsValid() || !u.Addr().Is4() || u.Bits() > 29 || u != u.Masked() {
		return fmt.Errorf("netns: LabConfig.Underlay %s: must be an IPv4 network of /29 or larger without host bits, e.g. 10.250.7.0/24", u)
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return fmt.Errorf("netns: LabConfig.MTU %d: must be 0 (1500) or between 576 and 65535", c.MTU)
	}
	if c.Hosts > 0 {
		if _, err := hostAddr(u, c.Hosts-1); err != nil {
			return fmt.Errorf("netns: LabConfig.Hosts %d: %w", c.Hosts, err)
		}
	}
	return nil
}

// hostAddr is host i's underlay address: .(i+2), short of the broadcast.
func hostAddr(u netip.Prefix, i int) (netip.Addr, error) {
	return nthAddr(u, uint64(i)+2)
}

// gatewayAddr is the current namespace's address on a Bridge underlay.
func gatewayAddr(u netip.Prefix) netip.Addr {
	a, _ := nthAddr(u, 1)
	return a
}

func nthAddr(u netip.Prefix, n uint64) (netip.Addr, error) {
	size := uint64(1) << (32 - u.Bits())
	if n >= size-1 {
		return netip.Addr{}, fmt.Errorf("underlay %s has no room for address number %d", u, n)
	}
	b := u.Addr().As4()
	v := uint64(binary.BigEndian.Uint32(b[:])) + n
	binary.BigEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), nil
}
