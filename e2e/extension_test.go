package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExtension runs flanneld's extension backend: the four commands are a
// script that records, per call, the namespace it ran in, its arguments,
// the environment flanneld gives it and its stdin (hex). Two agents; the
// second leaves (agent stopped, lease deleted) so the first runs the
// remove command.
func TestExtension(t *testing.T) {
	dir := t.TempDir()
	rec, script := filepath.Join(dir, "rec"), filepath.Join(dir, "ext.sh")
	body := `#!/bin/sh
ns=$(ip netns identify $$)
in=$(od -An -tx1 | tr -d ' \n')
echo "$ns $* | NETWORK=$NETWORK SUBNET=$SUBNET IPV6SUBNET=$IPV6SUBNET PUBLIC_IP=$PUBLIC_IP PUBLIC_IPV6=$PUBLIC_IPV6 | stdin=$in" >> ` + rec + `
[ "$1" = pre ] && echo "data-of-$ns"
exit 0
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"Network":"10.5.0.0/16","Backend":{"Type":"extension","PreStartupCommand":"%[1]s pre",`+
		`"PostStartupCommand":"%[1]s post $SUBNET","SubnetAddCommand":"%[1]s add","SubnetRemoveCommand":"%[1]s remove"}}`, script)
	c := newCluster(t, 2, cfg)
	h0, h1 := c.lab.Hosts[0], c.lab.Hosts[1]
	c.start(h0)
	c.start(h1)
	s0, s1 := c.subnetEnv(h0).Subnet, c.subnetEnv(h1).Subnet
	if env := c.subnetEnv(h0); env.MTU != c.lab.Config().MTU {
		t.Fatalf("subnet.env MTU %d, want the interface's %d", env.MTU, c.lab.Config().MTU)
	}
	// The lease as flanneld's extension writes it: the pre-startup output as a JSON string.
	resp, err := c.cli.Get(c.ctx, subnetsPrefix+strings.Replace(s1.String(), "/", "-", 1))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("h1's lease: %v", err)
	}
	wantLease := fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"extension","BackendData":"data-of-%s"}`, h1.Addr, h1.Name)
	if got := string(resp.Kvs[0].Value); got != wantLease {
		t.Fatalf("h1's lease value %s, want %s", got, wantLease)
	}
	c.waitPeers(h0, 1, 10*time.Second)
	if p := c.status(h0).Peers[0]; p.Path != "external" || p.Addr != h1.Addr.String() {
		t.Fatalf("h0's peer: %+v, want path external at %s", p, h1.Addr)
	}

	c.agents[h1.Name].Stop()
	if _, err := c.cli.Delete(c.ctx, subnetsPrefix+strings.Replace(s1.String(), "/", "-", 1)); err != nil {
		t.Fatal(err)
	}
	hex := func(s string) string { return fmt.Sprintf("%x", s+"\n") }
	line := func(ns, args, network, subnet, v6sn, pub, pub6, stdin string) string {
		return fmt.Sprintf("%s %s | NETWORK=%s SUBNET=%s IPV6SUBNET=%s PUBLIC_IP=%s PUBLIC_IPV6=%s | stdin=%s",
			ns, args, network, subnet, v6sn, pub, pub6, stdin)
	}
	want := []string{
		line(h0.Name, "pre", "", "", "", "", "", hex("")),
		line(h0.Name, "post "+s0.String(), "10.5.0.0/16", s0.String(), "::/0", h0.Addr.String(), "<nil>", hex("")),
		line(h1.Name, "pre", "", "", "", "", "", hex("")),
		line(h1.Name, "post "+s1.String(), "10.5.0.0/16", s1.String(), "::/0", h1.Addr.String(), "<nil>", hex("")),
		line(h0.Name, "add", "", s1.String(), "", h1.Addr.String(), "", hex("data-of-"+h1.Name)),
		line(h1.Name, "add", "", s0.String(), "", h0.Addr.String(), "", hex("data-of-"+h0.Name)),
		line(h0.Name, "remove", "", s1.String(), "", h1.Addr.String(), "", hex("data-of-"+h1.Name)),
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(rec)
		got := strings.Split(strings.TrimSpace(string(data)), "\n")
		if sameSet(got, want) {
			for _, l := range got {
				t.Logf("recorded: %s", l)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded:\n%s\nwant (any order):\n%s", data, strings.Join(want, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	n := map[string]int{}
	for _, s := range a {
		n[s]++
	}
	for _, s := range b {
		n[s]--
	}
	for _, v := range n {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestAlloc: flanneld's alloc backend only leases. The agent writes
// subnet.env (MTU: the interface's) and publishes PublicIP alone, and moves
// nothing: no TUN, no socket, the routing table and links as they were.
func TestAlloc(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}`)
	h0, h1 := c.lab.Hosts[0], c.lab.Hosts[1]
	snapshot := func() string {
		r, err := hostOutput(c.ctx, h0, "ip", "route", "show", "table", "all")
		if err != nil {
			t.Fatal(err)
		}
		l, err := hostOutput(c.ctx, h0, "ip", "-o", "link", "show")
		if err != nil {
			t.Fatal(err)
		}
		// The kernel adds eth0's link-local route once its IPv6 duplicate
		// address detection ends, which may be during the test: not felt's.
		var kept []string
		for _, line := range strings.Split(r+l, "\n") {
			if !strings.Contains(line, "fe80:") {
				kept = append(kept, line)
			}
		}
		return strings.Join(kept, "\n")
	}
	before := snapshot()
	c.start(h1)
	c.start(h0)
	env := c.subnetEnv(h0)
	if env.MTU != c.lab.Config().MTU || !env.Subnet.IsValid() {
		t.Fatalf("subnet.env: %+v", env)
	}
	resp, err := c.cli.Get(c.ctx, subnetsPrefix+strings.Replace(env.Subnet.String(), "/", "-", 1))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lease: %v", err)
	}
	if got, want := string(resp.Kvs[0].Value), fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null}`, h0.Addr); got != want {
		t.Fatalf("lease value %s, want %s", got, want)
	}
	time.Sleep(500 * time.Millisecond) // give a wrong route or link the chance to appear
	if after := snapshot(); after != before {
		t.Fatalf("alloc changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, err := hostOutput(c.ctx, h0, "ss", "-uanp"); err != nil || strings.Contains(out, "felt") {
		t.Fatalf("felt holds a UDP socket under alloc (%v):\n%s", err, out)
	}
	if st := c.status(h0); len(st.Peers) != 0 || st.TUN != "" {
		t.Fatalf("alloc status: %+v, want no peers (flanneld's alloc watches none) and no TUN", st)
	}
}
