package agent

import "github.com/feltnet/felt/lease"

// ipv6Backend reports whether felt carries IPv6 in a dual-stack cluster
// with backend type t: udp and vxlan (felt's packet loops), host-gw (kernel
// routes via PublicIPv6); not wireguard, nor an IPv6 lease for alloc and
// extension.
func ipv6Backend(t string) bool {
	return t == lease.BackendUDP || t == lease.BackendVXLAN || t == lease.BackendHostGW
}

// ipv6OnlyBackend reports whether felt carries an IPv6-only cluster
// (EnableIPv4 false) with backend type t: udp and vxlan only.
func ipv6OnlyBackend(t string) bool { return t == lease.BackendUDP || t == lease.BackendVXLAN }

// unsupported lists the network config settings felt parses (they are
// flanneld's) but does not implement, each saying what that means beside
// flanneld nodes. The agent logs them once at start; none is fatal, since
// the config is shared by the whole cluster and felt can still carry traffic.
func unsupported(c *lease.Config) []string {
	var out []string
	b := c.Backend
	if b.Type == lease.BackendVXLAN && b.GBP {
		out = append(out, "Backend.GBP: felt neither sends nor accepts the group policy extension; frames from GBP nodes that carry it are dropped as bad_header")
	}
	if c.EnableIPv6 && !ipv6Backend(b.Type) {
		out = append(out, "EnableIPv6: felt carries IPv6 with the udp, vxlan and host-gw backends only; this "+b.Type+
			" node takes an IPv4-only lease and writes no IPv6 lines to subnet.env")
	}
	return out
}
