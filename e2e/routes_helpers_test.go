package e2e

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
)

// subnetEnv reads the subnet.env the agent on h wrote.
func (c *cluster) subnetEnv(h *netns.Host) lease.SubnetEnv {
	c.t.Helper()
	env, err := lease.ReadSubnetEnv(c.subnetFile(h))
	if err != nil {
		c.t.Fatalf("subnet.env of %s: %v", h.Name, err)
	}
	return env
}

// container adds a container to h as docker or a CNI bridge plugin would
// from subnet.env: bridge cni0 at <subnet>.1, the container at <subnet>.2
// with FLANNEL_MTU on its interface and its default route via the bridge.
func (c *cluster) container(h *netns.Host, name string) *netns.Host {
	c.t.Helper()
	env := c.subnetEnv(h)
	gw := env.Subnet.Addr().Next()
	ctr, err := h.AddContainer(c.ctx, name, "cni0", netip.PrefixFrom(gw.Next(), env.Subnet.Bits()), gw)
	if err != nil {
		c.t.Fatalf("container on %s: %v", h.Name, err)
	}
	if out, err := ctr.Command(c.ctx, "ip", "link", "set", ctr.Iface, "mtu", strconv.Itoa(env.MTU)).CombinedOutput(); err != nil {
		c.t.Fatalf("container MTU: %v: %s", err, out)
	}
	return ctr
}

// routeTo is `ip -4|-6 route show exact <sn>` in h, by sn's family,
// trimmed ("" when there is none).
func routeTo(t *testing.T, c *cluster, h *netns.Host, sn netip.Prefix) string {
	t.Helper()
	family := "-4"
	if sn.Addr().Is6() {
		family = "-6"
	}
	out, err := hostOutput(c.ctx, h, "ip", family, "route", "show", "exact", sn.String())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// waitRoute waits (a liveness bound, not a timing check) until h's route
// to sn reads want ("" for none) and returns how long that took. An IPv6
// route need only start with want: the kernel appends "metric 1024 pref
// medium" to it.
func waitRoute(t *testing.T, c *cluster, h *netns.Host, sn netip.Prefix, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := routeTo(t, c, h, sn)
		if got == want || (sn.Addr().Is6() && want != "" && strings.HasPrefix(got, want+" ")) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: route to %s is %q after %v, want %q", h.Name, sn, got, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metrics scrapes the agent's /metrics on h and returns the samples by
// name with labels, e.g. `felt_peers_by_path{path="direct"}`.
func (c *cluster) metrics(h *netns.Host) map[string]float64 {
	c.t.Helper()
	out, err := hostOutput(c.ctx, h, "curl", "-sf", fmt.Sprintf("http://127.0.0.1:%d/metrics", healthPort))
	if err != nil {
		c.t.Fatal(err)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// peerPaths is the agent's path per peer subnet, from felt status.
func (c *cluster) peerPaths(h *netns.Host) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	for _, p := range c.status(h).Peers {
		out[p.Subnet] = p.Path
	}
	return out
}

// packetCounters are the agent's packet path counters on h.
func (c *cluster) packetCounters(h *netns.Host) [2]uint64 {
	c.t.Helper()
	ctr := c.status(h).Counters
	return [2]uint64{ctr["out_packets"], ctr["in_packets"]}
}
