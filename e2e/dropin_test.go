package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/feltnet/felt/lease/etcdserver"
	"github.com/feltnet/felt/netns"
)

// notifySocket is a systemd NOTIFY_SOCKET stand-in: a unixgram socket whose
// messages the test reads.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifySocket) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.msgs, "\n---\n")
}

// waitFor waits until some message contains want.
func (n *notifySocket) waitFor(t *testing.T, want string, within time.Duration, p *netns.Process) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(n.all(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on NOTIFY_SOCKET after %v; messages:\n%s\nagent log:\n%s", want, within, n.all(), p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flanneldBin is felt installed under flanneld's name (a symlink).
func flanneldBin(t *testing.T) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "flanneld")
	if err := os.Symlink(felt(t), link); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestDropinBootBeforeEtcd: felt started as `flanneld`, with a seed-style
// command line (single-dash flags, FLANNELD_* environment) and a
// NOTIFY_SOCKET, 10 s before etcd exists: /healthz answers at once, /readyz
// and systemd hear "not ready" until etcd is up, then READY=1, and traffic
// flows to a peer.
func TestDropinBootBeforeEtcd(t *testing.T) {
	c := newCluster(t, 2, netConfig("udp"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	late := "http://" + netip.AddrPortFrom(c.lab.Gateway(), uint16(freePort(t, c.lab.Gateway()))).String()
	ns := newNotifySocket(t)
	subnetFile := c.subnetFile(a)
	os.MkdirAll(filepath.Dir(subnetFile), 0o755)
	p := startLogged(t, c.ctx, a, "flanneld (felt)", "env", "NOTIFY_SOCKET="+ns.path, "FLANNELD_IFACE="+a.Iface,
		"FLANNELD_HEALTHZ_PORT="+strconv.Itoa(healthPort), "FLANNELD_HEALTHZ_IP=127.0.0.1",
		flanneldBin(t), "-etcd-endpoints="+late, "-etcd-prefix=/coreos.com/network", "-subnet-file="+subnetFile,
		"-etcd-dial-timeout=1s", "-ip-masq", "-v", "0")
	start := time.Now()
	var healthz string
	for {
		if r := tryGet(a, "/healthz"); strings.HasPrefix(r, "HTTP/1.0 200") {
			healthz = time.Since(start).Round(time.Millisecond).String()
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no /healthz:\n%s", p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.waitFor(t, "STATUS=waiting for etcd", 10*time.Second, p)
	if r := c.httpGet(a, "/readyz"); !strings.HasPrefix(r, "HTTP/1.0 503") || !strings.Contains(r, "etcd") {
		t.Fatalf("/readyz before etcd: %s", r)
	}
	t.Logf("/healthz answered %s after start; /readyz 503 while etcd is away", healthz)

	time.Sleep(10*time.Second - time.Since(start))
	srv, err := etcdserver.Start(c.ctx, etcdserver.Config{DataDir: filepath.Join(c.dir, "etcd-late"), ClientURLs: []string{late},
		PeerURLs: []string{"http://127.0.0.1:" + strconv.Itoa(freePort(t, netip.MustParseAddr("127.0.0.1")))}, Logger: zap.NewNop(), UnsafeNoFsync: true})
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	cli := etcdClient(t, late)
	putConfig(t, cli, netConfig("udp"))
	up := time.Now()
	ns.waitFor(t, "READY=1", 60*time.Second, p)
	t.Logf("READY=1 %v after etcd came up; messages:\n%s", time.Since(up).Round(time.Millisecond), ns.all())
	if r := c.httpGet(a, "/readyz"); !strings.HasPrefix(r, "HTTP/1.0 200") {
		t.Fatalf("/readyz after READY=1: %s", r)
	}
	if _, err := os.Stat(subnetFile); err != nil {
		t.Fatalf("READY=1 before subnet.env: %v", err)
	}
	if out, err := a.Command(c.ctx, "iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG").CombinedOutput(); err != nil ||
		strings.Count(string(out), "-A FLANNEL-POSTRTG") != 6 {
		t.Fatalf("READY=1 before the masquerade rules: %v\n%s", err, out)
	}
	c.start(b, "--etcd-endpoints", late, "--healthz-port", "0")
	addrA := netip.MustParsePrefix(readSubnet(t, subnetFile)).Addr()
	if err := pingEventually(c.ctx, b, addrA, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	transfer(t, b, a, addrA, 8<<20)
}

func readSubnet(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "FLANNEL_SUBNET="); ok {
			return netip.MustParsePrefix(v).Masked().String()
		}
	}
	t.Fatalf("no FLANNEL_SUBNET in %s", b)
	return ""
}

// tryGet is httpGet that returns "" when nothing listens yet.
func tryGet(h *netns.Host, path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := h.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(healthPort))
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n"))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	return string(buf[:n])
}

// TestDropinUnreachableFailsFast: a TCP connect to an overlay address no
// lease covers fails with an ICMP error (not a timeout), as with flanneld's
// udp backend; how long it took is logged.
func TestDropinUnreachableFailsFast(t *testing.T) {
	c := newCluster(t, 2, netConfig("vxlan"))
	a, b := c.lab.Hosts[0], c.lab.Hosts[1]
	c.startAll()
	for _, dst := range []string{"10.5.250.9:80", "10.5.251.1:22"} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		conn, err := a.DialContext(ctx, "tcp", dst)
		cancel()
		if conn != nil {
			conn.Close()
		}
		took := time.Since(start)
		var ne net.Error
		switch {
		case err == nil:
			t.Fatalf("connect to unleased %s succeeded", dst)
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connect to unleased %s timed out (no ICMP error came back): %v", dst, err)
		case !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EHOSTUNREACH) && !errors.Is(err, syscall.ECONNREFUSED):
			t.Fatalf("connect to unleased %s: %v, want an unreachable error", dst, err)
		}
		t.Logf("connect to unleased %s failed after %v: %v", dst, took.Round(time.Microsecond), err)
	}
	// A leased address still connects.
	transfer(t, a, b, c.tunAddr(b), 1<<20)
}

// TestDropinFirewallAndBlackhole: --ip-masq rules in flanneld's order, in
// place before subnet.env is written (as flanneld orders them); a rule
// deleted by hand rebuilt in order within --iptables-resync; the
// --ip-blackhole-route route, deleted by hand, is back.
func TestDropinFirewallAndBlackhole(t *testing.T) {
	c := newCluster(t, 1, netConfig("udp"))
	a := c.lab.Hosts[0]
	c.start(a, "--ip-masq", "--iptables-resync", "1", "--ip-blackhole-route")
	subnet := c.status(a).Subnet
	rules := func() string { // iptables' complaint while the chain is missing
		out, _ := a.Command(c.ctx, "iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG").CombinedOutput()
		return string(out)
	}
	// subnet.env (which start waited for) comes after the rules, as flanneld writes it.
	before := rules()
	if strings.Count(before, "-A FLANNEL-POSTRTG") != 6 {
		t.Fatalf("rules once subnet.env is there:\n%s", before)
	}
	if out, err := a.Command(c.ctx, "iptables", "-t", "nat", "-D", "FLANNEL-POSTRTG", "2").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	blackhole := func() string {
		out, _ := a.Command(c.ctx, "ip", "route", "show", "type", "blackhole").CombinedOutput()
		return string(out)
	}
	if !strings.Contains(blackhole(), subnet) {
		t.Fatalf("no blackhole route for %s: %s", subnet, blackhole())
	}
	if out, err := a.Command(c.ctx, "ip", "route", "del", "blackhole", subnet).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rules() != before || !strings.Contains(blackhole(), subnet) {
		if time.Now().After(deadline) {
			t.Fatalf("not restored: rules\n%s\nwant\n%s\nblackhole: %s", rules(), before, blackhole())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDropinFirewallDualStackNFTables: a dual-stack node with
// "EnableNFTables": true, --ip-masq and --ip-blackhole-route keeps
// flanneld's nftables tables for both families (flannel-ipv4, family ip;
// flannel-ipv6, family ip6; each with postrtg's six rules and forward's two)
// and a blackhole route for each of its subnets; a table deleted by hand
// and a blackhole deleted by hand are back within --iptables-resync.
func TestDropinFirewallDualStackNFTables(t *testing.T) {
	c := newCluster(t, 1, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","EnableNFTables":true,`+
		`"Backend":{"Type":"udp"}}`)
	addUnderlay6(t, c)
	a := c.lab.Hosts[0]
	c.start(a, "--ip-masq", "--iptables-resync", "1", "--ip-blackhole-route")
	st := c.status(a)
	// counts lists "table/chain:rules" for both tables (a missing table: none).
	counts := func() string {
		var out []string
		for _, ch := range flannelNftChains(t, a, true) {
			out = append(out, fmt.Sprintf("%s/%s:%d", ch.table.Name, ch.name, len(ch.rules)))
		}
		return strings.Join(out, " ")
	}
	const want = "flannel-ipv4/postrtg:6 flannel-ipv4/forward:2 flannel-ipv6/postrtg:6 flannel-ipv6/forward:2"
	blackholes := func() string {
		out, _ := a.Command(c.ctx, "ip", "-4", "route", "show", "type", "blackhole").CombinedOutput()
		out6, _ := a.Command(c.ctx, "ip", "-6", "route", "show", "type", "blackhole").CombinedOutput()
		return string(out) + string(out6)
	}
	haveBlackholes := func() bool {
		b := blackholes()
		return strings.Contains(b, st.Subnet) && strings.Contains(b, st.IPv6Subnet)
	}
	waitFor := func(when string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for counts() != want || !haveBlackholes() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: rules %q, want %q; blackholes (want %s and %s):\n%s", when, counts(), want, st.Subnet,
					st.IPv6Subnet, blackholes())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// subnet.env (which start waited for) comes after the rules and the
	// blackholes, as flanneld writes it.
	if got := counts(); got != want || !haveBlackholes() {
		t.Fatalf("once subnet.env is there: rules %q, want %q; blackholes (want %s and %s):\n%s", got, want,
			st.Subnet, st.IPv6Subnet, blackholes())
	}
	if err := a.Do(func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		conn.DelTable(&nftables.Table{Name: "flannel-ipv6", Family: nftables.TableFamilyIPv6})
		return conn.Flush()
	}); err != nil {
		t.Fatalf("delete table flannel-ipv6 by hand: %v", err)
	}
	mustRun(t, c.ctx, a, "ip", "-6", "route", "del", "blackhole", st.IPv6Subnet)
	waitFor("after deleting table flannel-ipv6 and the IPv6 blackhole by hand")
}

func etcdClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
