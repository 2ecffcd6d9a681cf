package agent

import "github.com/feltnet/felt/lease"

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
	if c.EnableIPv6 {
		out = append(out, "EnableIPv6: felt carries IPv4 only and leases no IPv6 subnet")
	}
	return out
}
