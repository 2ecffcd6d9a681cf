package e2e

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/netns"
)

// TestStartupErrors: errors at start-up say what is wrong and what to do,
// and exit non-zero; a missing config is waited for, as flanneld does.
func TestStartupErrors(t *testing.T) {
	c := newCluster(t, 1, netConfig("udp"))
	h := c.lab.Hosts[0]
	bin := felt(t)
	base := []string{"agent", "--etcd-endpoints", c.etcd.ClientURL(), "--iface", h.Iface, "--subnet-file", t.TempDir() + "/subnet.env"}

	t.Run("no etcd is retried", func(t *testing.T) {
		// As flanneld: an etcd that is not up yet (a boot) is waited for,
		// and the log says why and what to do.
		p, err := h.Start(c.ctx, bin, "agent", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-dial-timeout", "1s", "--etcd-request-timeout", "1s")
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.Log(), "no etcd reachable at http://127.0.0.1:1") || !strings.Contains(p.Log(), "retrying") {
			select {
			case <-p.Done():
				t.Fatalf("agent exited without etcd: %v\n%s", p.Wait(), p.Log())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no retry message:\n%s", p.Log())
			}
		}
		if !strings.Contains(p.Log(), "felt etcd") {
			t.Errorf("the message does not say what to do:\n%s", p.Log())
		}
	})
	t.Run("port taken", func(t *testing.T) {
		var conn *net.UDPConn
		if err := h.Do(func() (err error) {
			conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h.Addr.AsSlice(), Port: 8285})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		out, err := h.Command(c.ctx, bin, base...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "address already in use") || !strings.Contains(string(out), "Backend.Port") {
			t.Fatalf("err %v, output:\n%s", err, out)
		}
	})
	t.Run("tun name taken by another link", func(t *testing.T) {
		if out, err := h.Command(c.ctx, "ip", "link", "add", "notatun", "type", "bridge").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		out, err := h.Command(c.ctx, bin, append(base, "--tun-name", "notatun")...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "notatun") {
			t.Fatalf("err %v, output:\n%s", err, out)
		}
		t.Logf("%s", out)
	})
	t.Run("config missing is waited for", func(t *testing.T) {
		if _, err := c.cli.Delete(c.ctx, "/coreos.com/network/config"); err != nil {
			t.Fatal(err)
		}
		p, err := h.Start(c.ctx, bin, append(base, "--healthz-ip", "127.0.0.1", "--healthz-port", strconv.Itoa(healthPort))...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.Log(), "network config not found") {
			if time.Now().After(deadline) {
				t.Fatalf("no hint about the missing config:\n%s", p.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := c.cli.Put(c.ctx, "/coreos.com/network/config", netConfig("udp")); err != nil {
			t.Fatal(err)
		}
		for !c.statusOK(h) {
			if time.Now().After(deadline.Add(10 * time.Second)) {
				t.Fatalf("agent did not come up after the config appeared:\n%s", p.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// statusOK says whether h's agent answers /status.
func (c *cluster) statusOK(h *netns.Host) bool {
	return h.Command(c.ctx, felt(c.t), "status", "--json", "--healthz-port", strconv.Itoa(healthPort)).Run() == nil
}

// TestRestartKeepsSubnetAndMAC: SIGTERM stops the agent cleanly (exit 0; its
// persistent TUN stays with its address, so the overlay route outlives the
// process); started again it holds the same subnet and VtepMAC.
func TestRestartKeepsSubnetAndMAC(t *testing.T) {
	c := newCluster(t, 2, netConfig("vxlan"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	c.start(a)
	c.start(b)
	before := c.status(a)
	if err := c.agents[a.Name].Stop(); err != nil {
		t.Fatalf("agent did not exit cleanly on SIGTERM: %v\n%s", err, c.agents[a.Name].Log())
	}
	if out, err := a.Command(c.ctx, "ip", "-br", "addr", "show", "felt0").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), netip.MustParsePrefix(before.Subnet).Addr().String()) {
		t.Fatalf("felt0 and its address should outlive a clean stop: %v\n%s", err, out)
	}
	c.start(a)
	after := c.status(a)
	if after.Subnet != before.Subnet || after.VtepMAC != before.VtepMAC {
		t.Fatalf("restart changed the lease: subnet %s → %s, VtepMAC %s → %s", before.Subnet, after.Subnet, before.VtepMAC, after.VtepMAC)
	}
	resp, err := c.cli.Get(c.ctx, "/coreos.com/network/subnets", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 2 {
		t.Fatalf("leases after restart: %d (%v), want 2", resp.Count, err)
	}
	if err := pingEventually(c.ctx, b, c.tunAddr(a), 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// httpGet fetches path from h's agent health server (inside h's namespace).
func (c *cluster) httpGet(h *netns.Host, path string) string {
	c.t.Helper()
	conn, err := h.DialContext(c.ctx, "tcp", "127.0.0.1:"+strconv.Itoa(healthPort))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	b, _ := io.ReadAll(conn)
	return string(b)
}

// TestHealthAndMetrics: flanneld's /healthz and /readyz, and Prometheus
// /metrics with felt's counters after traffic.
func TestHealthAndMetrics(t *testing.T) {
	c := newCluster(t, 2, netConfig("udp"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	c.start(a)
	c.start(b)
	if err := pingEventually(c.ctx, a, c.tunAddr(b), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := c.httpGet(a, p); !strings.HasPrefix(r, "HTTP/1.0 200") {
			t.Fatalf("%s: %s", p, r)
		}
	}
	m := c.httpGet(a, "/metrics")
	for _, want := range []string{`felt_packets_total{direction="out"}`, `felt_drops_total{reason="no_route"}`,
		"felt_peers 1", "felt_lease_expiry_timestamp_seconds{subnet=", "felt_lease_renewals_total 0"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, `felt_packets_total{direction="out"} 0`) {
		t.Error("/metrics counts no outbound packets after a ping")
	}
}
