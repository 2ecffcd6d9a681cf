package router

import (
	"fmt"
	"net/netip"
)

// Peer is one remote node: the subnet it leases and where its frames go.
type Peer struct {
	Subnet netip.Prefix   // the peer's leased subnet (masked by NewTable)
	Addr   netip.AddrPort // PublicIP:port that frames for Subnet are sent to
	MAC    [6]byte        // vxlan VtepMAC; zero for the udp framing
}

// Validate reports why p cannot be routed to, naming the field, the value
// and the rule; nil if p is usable.
func (p Peer) Validate() error {
	if !p.Subnet.IsValid() {
		return fmt.Errorf("router: peer Subnet %q: must be a valid prefix", p.Subnet)
	}
	if !p.Addr.IsValid() || p.Addr.Port() == 0 {
		return fmt.Errorf("router: peer %s Addr %q: must be a valid IP:port with a non-zero port", p.Subnet, p.Addr)
	}
	if a := p.Addr.Addr(); a.IsUnspecified() || a.IsMulticast() {
		return fmt.Errorf("router: peer %s Addr %q: must be a unicast address", p.Subnet, p.Addr)
	}
	return nil
}
