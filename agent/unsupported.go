package agent

import "github.com/feltnet/felt/lease"

// unsupported lists the network config settings felt parses (they are
// flanneld's) but does not implement, each saying what that means beside
// flanneld nodes. The agent logs them once at start; none is fatal, since
// the config is shared by the whole cluster and felt can still carry traffic.
func unsupported(c *lease.Config) []string {
	var out []string
	b := c.Backend
	if b.Type == lease.BackendVXLAN && b.DirectRouting {
		out = append(out, "Backend.DirectRouting: felt always encapsulates; flanneld nodes on the same subnet will send it unencapsulated packets and need ip_forward and a route on this host, and strict rp_filter drops the asymmetric replies")
	}
	if b.Type == lease.BackendVXLAN && b.GBP {
		out = append(out, "Backend.GBP: felt neither sends nor accepts the group policy extension; frames from GBP nodes that carry it are dropped as bad_header")
	}
	return out
}
