// Package e2e runs felt agents in network namespaces against a real etcd:
// real TUN devices, real sockets, real TCP, checked byte for byte. It needs
// root (CI runs as root); without it every test skips and says why.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/feltnet/felt/agent"
	"github.com/feltnet/felt/internal/tcpcheck"
	"github.com/feltnet/felt/lease/etcdserver"
	"github.com/feltnet/felt/netns"
)

const healthPort = 8471

var (
	buildOnce sync.Once
	feltBin   string
	buildErr  error
	labSeq    int
	labMu     sync.Mutex
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and TUN devices (CI runs as root)")
	}
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
}

// felt builds the felt binary once per test run.
func felt(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "felt-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		feltBin = filepath.Join(dir, "felt")
		out, err := exec.Command("go", "build", "-o", feltBin, "github.com/feltnet/felt/cmd/felt").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return feltBin
}

// cluster is a lab of hosts on one underlay bridge, an embedded etcd on the
// bridge's address in the test's namespace, and one felt agent per host.
type cluster struct {
	t      *testing.T
	ctx    context.Context
	lab    *netns.Lab
	etcd   *etcdserver.Server
	cli    *clientv3.Client
	dir    string
	agents map[string]*netns.Process
}

func newCluster(t *testing.T, hosts int, config string) *cluster {
	t.Helper()
	needRoot(t)
	bin := felt(t)
	_ = bin
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	labMu.Lock()
	labSeq++
	seq := labSeq
	labMu.Unlock()
	name := fmt.Sprintf("fe%d%c", os.Getpid()%10000, 'a'+rune(seq%26))
	under := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 200+os.Getpid()%50, seq%250))
	lab, err := netns.NewLab(ctx, netns.LabConfig{Name: name, Hosts: hosts, Underlay: under})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { lab.Close() })
	c := &cluster{t: t, ctx: ctx, lab: lab, dir: t.TempDir(), agents: map[string]*netns.Process{}}

	port := freePort(t, lab.Gateway())
	url := "http://" + netip.AddrPortFrom(lab.Gateway(), uint16(port)).String()
	peer := "http://127.0.0.1:" + strconv.Itoa(freePort(t, netip.MustParseAddr("127.0.0.1")))
	srv, err := etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(c.dir, "etcd"),
		ClientURLs: []string{url}, PeerURLs: []string{peer}, Logger: zap.NewNop(), UnsafeNoFsync: true})
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	c.etcd = srv
	c.cli, err = clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cli.Close() })
	if _, err := c.cli.Put(ctx, "/coreos.com/network/config", config); err != nil {
		t.Fatal(err)
	}
	return c
}

// netConfig is the network config of a cluster on backend.
func netConfig(backend string) string {
	return fmt.Sprintf(`{"Network":"10.5.0.0/16","Backend":{"Type":%q}}`, backend)
}

// eachPacketBackend runs test once per backend of felt's own packet path
// (udp, vxlan), as a subtest named for it, each with a new cluster of n
// hosts on netConfig(backend).
func eachPacketBackend(t *testing.T, n int, test func(t *testing.T, c *cluster, backend string)) {
	for _, backend := range []string{"udp", "vxlan"} {
		t.Run(backend, func(t *testing.T) { test(t, newCluster(t, n, netConfig(backend)), backend) })
	}
}

func freePort(t *testing.T, ip netip.Addr) int {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *cluster) subnetFile(h *netns.Host) string {
	return filepath.Join(c.dir, h.Name, "subnet.env")
}

// startLogged starts name in h as what (for messages), stops it at
// cleanup and, if the test failed, logs its output.
func startLogged(t *testing.T, ctx context.Context, h *netns.Host, what, name string, args ...string) *netns.Process {
	t.Helper()
	p, err := h.Start(ctx, name, args...)
	if err != nil {
		t.Fatalf("start %s on %s: %v", what, h.Name, err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s on %s, log:\n%s", what, h.Name, p.Log())
		}
	})
	return p
}

// start runs felt agent on h and waits until it has written subnet.env.
func (c *cluster) start(h *netns.Host, extra ...string) *netns.Process {
	c.t.Helper()
	return c.startNode(h, "agent", felt(c.t), []string{"agent"}, extra...)
}

// startNode runs bin on h with the words of cmd, the flags felt agent and
// flanneld share (etcd, interface, subnet file, health endpoint), then
// extra (which may override them: the last of a flag wins), and waits until
// it has written subnet.env.
func (c *cluster) startNode(h *netns.Host, what, bin string, cmd []string, extra ...string) *netns.Process {
	c.t.Helper()
	os.Remove(c.subnetFile(h))
	args := append(append(cmd, "--etcd-endpoints", c.etcd.ClientURL(), "--iface", h.Iface,
		"--subnet-file", c.subnetFile(h), "--healthz-ip", "127.0.0.1", "--healthz-port", strconv.Itoa(healthPort)), extra...)
	p := startLogged(c.t, c.ctx, h, what, bin, args...)
	c.agents[h.Name] = p
	if err := p.WaitFile(c.ctx, c.subnetFile(h), 20*time.Second); err != nil {
		c.t.Fatalf("%s on %s: %v", what, h.Name, err)
	}
	return p
}

// startAll starts felt agent on every host of the lab and waits until each
// has every other host as a peer.
func (c *cluster) startAll() {
	c.t.Helper()
	hosts := c.lab.Hosts
	for _, h := range hosts {
		c.start(h)
	}
	for _, h := range hosts {
		c.waitPeers(h, len(hosts)-1, 10*time.Second)
	}
}

// status reads a running agent's /status through `felt status --json`.
func (c *cluster) status(h *netns.Host) agent.Status {
	c.t.Helper()
	out, err := h.Command(c.ctx, felt(c.t), "status", "--json", "--healthz-port", strconv.Itoa(healthPort)).Output()
	if err != nil {
		c.t.Fatalf("felt status on %s: %v", h.Name, err)
	}
	var st agent.Status
	if err := json.Unmarshal(out, &st); err != nil {
		c.t.Fatalf("status of %s: %v: %s", h.Name, err, out)
	}
	return st
}

// tunAddr is the host's TUN address: <subnet>.0, as flanneld sets it.
func (c *cluster) tunAddr(h *netns.Host) netip.Addr {
	c.t.Helper()
	return netip.MustParsePrefix(c.status(h).Subnet).Addr()
}

// tunAddrs is tunAddr of each of hosts, by host name.
func (c *cluster) tunAddrs(hosts []*netns.Host) map[string]netip.Addr {
	c.t.Helper()
	addr := map[string]netip.Addr{}
	for _, h := range hosts {
		addr[h.Name] = c.tunAddr(h)
	}
	return addr
}

// pingMesh pings every host's address in addr (by host name) from every
// other host, each with pingEventually for up to 10 s, and returns the
// first failure.
func pingMesh(ctx context.Context, hosts []*netns.Host, addr map[string]netip.Addr) error {
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				if err := pingEventually(ctx, a, addr[b.Name], 10*time.Second); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// waitPeers waits until h's agent has n peers.
func (c *cluster) waitPeers(h *netns.Host, n int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := c.status(h)
		if len(st.Peers) == n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s has %d peers after %v, want %d: %+v", h.Name, len(st.Peers), within, n, st.Peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ping(ctx context.Context, from *netns.Host, to netip.Addr) error {
	out, err := from.Command(ctx, "ping", "-c", "1", "-W", "1", to.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v\n%s", to, from.Name, err, out)
	}
	return nil
}

// pingEventually retries a ping until within has passed.
func pingEventually(ctx context.Context, from *netns.Host, to netip.Addr, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := ping(ctx, from, to)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// transfer sends size pseudo-random bytes over TCP from one host to a
// listener on dst (an address inside the receiving host), and compares the
// SHA-256 of what was sent with what arrived.
func transfer(t *testing.T, from, to *netns.Host, dst netip.Addr, size int64) {
	t.Helper()
	ln, got := listenHash(t, to, dst, io.Discard)
	defer ln.Close()
	conn := dialFrom(t, from, ln.Addr().String())
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	sent, sum, err := tcpcheck.Send(conn, uint64(size), size)
	conn.Close()
	if err != nil {
		t.Fatalf("send from %s to %s after %d bytes: %v", from.Name, dst, sent, err)
	}
	select {
	case r := <-got:
		if err := r.Check(size, sum); err != nil {
			t.Fatalf("%s → %s: %v", from.Name, to.Name, err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s → %s: receiver did not finish", from.Name, to.Name)
	}
}

// listenHash listens on dst:0 inside h and hands the listener to
// tcpcheck.Receive: the first connection's bytes are hashed (and also
// written to also), the result sent on the channel when the peer closes.
func listenHash(t *testing.T, h *netns.Host, dst netip.Addr, also io.Writer) (net.Listener, <-chan tcpcheck.Received) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", dst, h.Name, err)
	}
	return ln, tcpcheck.Receive(ln, also, 0)
}

// dialFrom opens a TCP connection to addr from inside h.
func dialFrom(t *testing.T, h *netns.Host, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := h.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, h.Name, err)
	}
	return conn
}
