package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/netns"
)

// The tests in this file run flanneld itself beside felt: E2E_FLANNELD names
// a flanneld binary (built from github.com/flannel-io/flannel; the CI
// machines have none, so there they skip and the stand-ins of
// flannelhost_test.go and interop_*_test.go carry the interop checks).
const flanneldEnv = "E2E_FLANNELD"

// realFlanneld is FELT_FLANNELD's binary, or skips the test.
func realFlanneld(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(flanneldEnv)
	if bin == "" {
		t.Skipf("%s is not set: no flanneld binary to run beside felt", flanneldEnv)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s: not an executable file (%v)", flanneldEnv, bin, err)
	}
	return bin
}

// TestRealFlanneldMixed: one node runs flanneld, the other felt, on one
// etcd, for each backend both implement without a kernel module felt lacks
// (udp, vxlan, host-gw). A container on each (as a CNI bridge plugin sets
// one up from subnet.env) reaches the other's: ping both ways and 16 MiB
// each way, byte for byte. The two leases have the same JSON shape and the
// two subnet.env files the same keys and MTU.
func TestRealFlanneldMixed(t *testing.T) {
	bin := realFlanneld(t)
	for _, backend := range []string{"udp", "vxlan", "host-gw"} {
		t.Run(backend, func(t *testing.T) {
			c := newCluster(t, 2, netConfig(backend))
			fl, fe := c.lab.Hosts[0], c.lab.Hosts[1]
			for _, h := range c.lab.Hosts {
				// As a container runtime sets it: neither flanneld nor felt does.
				if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
					t.Fatal(err)
				}
			}
			c.startNode(fl, "flanneld", bin, nil)
			c.start(fe)
			c.waitPeers(fe, 1, 10*time.Second)
			cfl, cfe := c.container(fl, "c1"), c.container(fe, "c1")
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("felt's counters: %v\n%s", c.status(fe).Counters, forwardingState(c, fl, fe, cfl, cfe))
				}
			})
			afl, afe := c.subnetEnv(fl).Subnet.Addr().Next().Next(), c.subnetEnv(fe).Subnet.Addr().Next().Next()
			for _, p := range [][2]*netns.Host{{cfl, cfe}, {cfe, cfl}} {
				to := afe
				if p[1] == cfl {
					to = afl
				}
				if err := pingEventually(c.ctx, p[0], to, 10*time.Second); err != nil {
					t.Fatalf("%s → %s: %v\n%s", p[0].Name, to, err, forwardingState(c, fl, fe))
				}
			}
			transfer(t, cfl, cfe, afe, 16<<20)
			transfer(t, cfe, cfl, afl, 16<<20)

			lfl, lfe := leaseShape(t, c, fl), leaseShape(t, c, fe)
			if lfl != lfe {
				t.Errorf("lease JSON shapes differ:\nflanneld %s\nfelt     %s", lfl, lfe)
			}
			efl, efe := subnetEnvShape(t, c, fl), subnetEnvShape(t, c, fe)
			if efl != efe {
				t.Errorf("subnet.env differs beyond the subnet:\nflanneld %s\nfelt     %s", efl, efe)
			}
		})
	}
}

// leaseShape is h's lease value in etcd with every JSON value replaced by
// its kind (string, number, bool, null), objects' keys sorted.
func leaseShape(t *testing.T, c *cluster, h *netns.Host) string {
	t.Helper()
	sn := c.subnetEnv(h).Subnet.Masked()
	// A dual-stack lease's key goes on: "&<IPv6 subnet>".
	key := "/coreos.com/network/subnets/" + strings.ReplaceAll(sn.String(), "/", "-")
	resp, err := c.cli.Get(c.ctx, key, clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lease %s… of %s: %v (%d keys)", key, h.Name, err, len(resp.Kvs))
	}
	var v any
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("lease %s of %s: %v: %s", key, h.Name, err, resp.Kvs[0].Value)
	}
	return jsonShape(v)
}

func jsonShape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+":"+jsonShape(x[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, jsonShape(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

var subnetLine = regexp.MustCompile(`^(FLANNEL_SUBNET|FLANNEL_IPV6_SUBNET)=.*$`)

// subnetEnvShape is h's subnet.env with the node's own subnets blanked,
// lines sorted.
func subnetEnvShape(t *testing.T, c *cluster, h *netns.Host) string {
	t.Helper()
	b, err := os.ReadFile(c.subnetFile(h))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		lines = append(lines, subnetLine.ReplaceAllString(l, "$1=<own>"))
	}
	slices.Sort(lines)
	return strings.Join(lines, " ")
}

// forwardingState is what a failed ping needs looked at: each host's
// routes, forwarding sysctl and FORWARD chain.
func forwardingState(c *cluster, hosts ...*netns.Host) string {
	var b strings.Builder
	for _, h := range hosts {
		for _, cmd := range [][]string{{"ip", "route"}, {"sysctl", "net.ipv4.ip_forward"}, {"iptables", "-S", "FORWARD"}, {"ip", "-s", "-d", "link"}, {"nstat", "-a"}} {
			out, err := hostOutput(c.ctx, h, cmd[0], cmd[1:]...)
			fmt.Fprintf(&b, "%s$ %s (%v)\n%s\n", h.Name, strings.Join(cmd, " "), err, out)
		}
	}
	return b.String()
}

// TestRealFlanneldFirewall: with --ip-masq, flanneld and felt write the
// same rules, in the same order, into iptables (FLANNEL-POSTRTG,
// FLANNEL-FWD and the jumps to them; ip6tables too with EnableIPv6) and,
// with EnableNFTables, into nftables (tables flannel-ipv4 and flannel-ipv6,
// chains postrtg and forward): read back from the kernel on each node, with
// the node's own subnets blanked.
func TestRealFlanneldFirewall(t *testing.T) {
	bin := realFlanneld(t)
	for _, tc := range []struct {
		name      string
		nft, dual bool
	}{{"iptables", false, false}, {"nftables", true, false}, {"iptables-dual-stack", false, true}, {"nftables-dual-stack", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}`
			if tc.nft {
				if _, err := exec.LookPath("nft"); err != nil {
					t.Skip("flanneld's nftables mode needs the nft binary (Debian: nftables)")
				}
				cfg += `,"EnableNFTables":true`
			}
			if tc.dual {
				cfg += `,"EnableIPv6":true,"IPv6Network":"fd00:5::/48"`
			}
			c := newCluster(t, 2, "{"+cfg+"}")
			if tc.dual {
				addUnderlay6(t, c)
			}
			fl, fe := c.lab.Hosts[0], c.lab.Hosts[1]
			c.startNode(fl, "flanneld", bin, nil, "--ip-masq")
			c.start(fe, "--ip-masq")
			read := func(h *netns.Host) string {
				if tc.nft {
					return nftRuleText(t, c, h, tc.dual)
				}
				return ruleText(t, c, h, tc.dual)
			}
			// Both write their rules before subnet.env; flanneld's
			// forward rules may come a moment later.
			var rfl, rfe string
			deadline := time.Now().Add(10 * time.Second)
			for {
				rfl, rfe = read(fl), read(fe)
				if (rfl == rfe && rfl != "") || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if rfl != rfe || rfl == "" {
				t.Errorf("rules differ:\nflanneld:\n%s\nfelt:\n%s", rfl, rfe)
			}
			if tc.dual && !strings.Contains(rfe, "fd00:5::/48") && !strings.Contains(rfe, "[253 0 0 5 0 0]") {
				t.Errorf("no IPv6 rules among felt's:\n%s", rfe)
			}
		})
	}
}

// ruleText is iptables-save's (and, with v6, ip6tables-save's) flannel
// lines on h (nat and filter), the node's own subnets blanked.
func ruleText(t *testing.T, c *cluster, h *netns.Host, v6 bool) string {
	t.Helper()
	env := c.subnetEnv(h)
	cmds := map[string]netip.Prefix{"iptables-save": env.Subnet}
	if v6 {
		cmds["ip6tables-save"] = env.IPv6Subnet
	}
	var out []string
	for _, cmd := range slices.Sorted(maps.Keys(cmds)) {
		own := cmds[cmd].Masked().String()
		for _, table := range []string{"nat", "filter"} {
			text, err := hostOutput(c.ctx, h, cmd, "-t", table)
			if err != nil {
				t.Fatalf("%s on %s: %v", cmd, h.Name, err)
			}
			for _, l := range strings.Split(text, "\n") {
				if strings.Contains(l, "FLANNEL") || strings.Contains(l, "flanneld") {
					l = counters.ReplaceAllString(strings.ReplaceAll(l, own, "<own>"), "[counters]")
					out = append(out, cmd+" "+table+": "+l)
				}
			}
		}
	}
	return strings.Join(out, "\n")
}

// nftRuleText is h's rules in table ip flannel-ipv4 (and, with v6, ip6
// flannel-ipv6), chain by chain, each rule's expressions as Go prints them,
// the node's own subnets blanked.
func nftRuleText(t *testing.T, c *cluster, h *netns.Host, v6 bool) string {
	t.Helper()
	env := c.subnetEnv(h)
	var out []string
	for _, ch := range flannelNftChains(t, h, v6) {
		own := env.Subnet.Masked()
		if ch.table.Family == nftables.TableFamilyIPv6 {
			own = env.IPv6Subnet.Masked()
		}
		b := own.Addr().AsSlice()
		// The subnet as a whole address and as the bytes of its prefix
		// (nft compares only those for a whole-byte prefix).
		blank := strings.NewReplacer(fmt.Sprint(b), "[own]", fmt.Sprint(b[:own.Bits()/8]), "[own]")
		for _, r := range ch.rules {
			var exprs []string
			for _, e := range r.Exprs {
				exprs = append(exprs, blank.Replace(fmt.Sprintf("%T%+v", e, e)))
			}
			out = append(out, ch.table.Name+" "+ch.name+": "+strings.Join(exprs, " "))
		}
	}
	return strings.Join(out, "\n")
}

// nftChain is one of flanneld's nftables chains as read back from a host.
type nftChain struct {
	table *nftables.Table
	name  string
	rules []*nftables.Rule
}

// flannelNftChains reads h's chains postrtg and forward of table ip
// flannel-ipv4 (and, with v6, ip6 flannel-ipv6), in that order; a chain
// that is not there is left out.
func flannelNftChains(t *testing.T, h *netns.Host, v6 bool) []nftChain {
	t.Helper()
	tables := []*nftables.Table{{Name: "flannel-ipv4", Family: nftables.TableFamilyIPv4}}
	if v6 {
		tables = append(tables, &nftables.Table{Name: "flannel-ipv6", Family: nftables.TableFamilyIPv6})
	}
	var out []nftChain
	err := h.Do(func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		for _, tb := range tables {
			for _, name := range []string{"postrtg", "forward"} {
				if rules, err := conn.GetRules(tb, &nftables.Chain{Name: name, Table: tb}); err == nil {
					out = append(out, nftChain{tb, name, rules})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("nftables rules on %s: %v", h.Name, err)
	}
	return out
}

// TestRealFlanneldDualStack: TestRealFlanneldMixed with EnableIPv6 over an
// IPv4 and an IPv6 underlay, for vxlan and host-gw (flanneld's udp carries
// no IPv6): containers with both families ping each other over both and
// move 16 MiB each way over IPv6; leases and subnet.env as flanneld's.
func TestRealFlanneldDualStack(t *testing.T) {
	bin := realFlanneld(t)
	for _, backend := range []string{"vxlan", "host-gw"} {
		t.Run(backend, func(t *testing.T) {
			c := newCluster(t, 2, fmt.Sprintf(`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":%q}}`, backend))
			addUnderlay6(t, c)
			fl, fe := c.lab.Hosts[0], c.lab.Hosts[1]
			c.startNode(fl, "flanneld", bin, nil)
			c.start(fe)
			c.waitPeers(fe, 2, 10*time.Second) // one entry a family
			cfl, cfe := addDualContainer(t, c, fl, c.subnetEnv(fl)), addDualContainer(t, c, fe, c.subnetEnv(fe))
			for _, p := range [][2]container6{{cfl, cfe}, {cfe, cfl}} {
				for _, to := range []netip.Addr{p[1].v4, p[1].v6} {
					if err := pingEventually(c.ctx, p[0].Host, to, 10*time.Second); err != nil {
						t.Fatalf("%s → %s: %v\n%s", p[0].Name, to, err, forwardingState(c, fl, fe))
					}
				}
			}
			transfer(t, cfl.Host, cfe.Host, cfe.v6, 16<<20)
			transfer(t, cfe.Host, cfl.Host, cfl.v6, 16<<20)
			if lfl, lfe := leaseShape(t, c, fl), leaseShape(t, c, fe); lfl != lfe {
				t.Errorf("lease JSON shapes differ:\nflanneld %s\nfelt     %s", lfl, lfe)
			}
			if efl, efe := subnetEnvShape(t, c, fl), subnetEnvShape(t, c, fe); efl != efe {
				t.Errorf("subnet.env differs beyond the subnets:\nflanneld %s\nfelt     %s", efl, efe)
			}
		})
	}
}
