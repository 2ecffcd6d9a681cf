package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/lease/etcdtest"
	"github.com/feltnet/felt/netns"
)

// etcdBinary is Debian's etcd (3.4). The fault tests run it as separate
// processes so that a member can be killed with SIGKILL, as a crash would.
const etcdBinary = "/usr/bin/etcd"

// etcdCluster is a 3-member etcd of etcdBinary processes in the test's own
// namespace, serving clients on the lab gateway's address so the hosts reach
// it. Members keep their data dirs and ports across kill and restart.
type etcdCluster struct {
	t       *testing.T
	members []*etcdMember
	cli     *clientv3.Client // over every member's client URL
}

type etcdMember struct {
	name, dir, clientURL, peerURL string
	initial                       string   // --initial-cluster
	extra                         []string // more flags (TLS)
	hc                            *http.Client
	cmd                           *exec.Cmd
	done                          chan struct{}
}

// newEtcdCluster starts n members on ip and waits until all are healthy.
// Everything is killed when the test ends.
func newEtcdCluster(t *testing.T, ip netip.Addr, n int) *etcdCluster {
	t.Helper()
	return newEtcdClusterTLS(t, ip, n, nil)
}

// newEtcdClusterTLS is newEtcdCluster serving clients over TLS with pki's
// server certificate and requiring client certificates signed by its CA
// (plain http when pki is nil).
func newEtcdClusterTLS(t *testing.T, ip netip.Addr, n int, pki *etcdtest.PKI) *etcdCluster {
	t.Helper()
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Skipf("needs Debian's etcd at %s for killable members (apt-get install etcd-server): %v", etcdBinary, err)
	}
	ec := &etcdCluster{t: t}
	dir := t.TempDir()
	scheme, hc := "http://", &http.Client{Timeout: time.Second}
	var extra []string
	var tlsCfg *tls.Config
	if pki != nil {
		scheme = "https://"
		extra = []string{"--cert-file", pki.ServerCert, "--key-file", pki.ServerKey,
			"--client-cert-auth", "--trusted-ca-file", pki.CA}
		tlsCfg = pki.ClientTLS(t)
		hc.Transport = &http.Transport{TLSClientConfig: tlsCfg}
	}
	var initial []string
	for i := range n {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			dir:       filepath.Join(dir, fmt.Sprintf("m%d", i)),
			clientURL: scheme + netip.AddrPortFrom(ip, uint16(freePort(t, ip))).String(),
			peerURL:   "http://" + netip.AddrPortFrom(ip, uint16(freePort(t, ip))).String(),
			extra:     extra,
			hc:        hc,
		}
		initial = append(initial, m.name+"="+m.peerURL)
		ec.members = append(ec.members, m)
	}
	for _, m := range ec.members {
		m.initial = strings.Join(initial, ",")
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.kill() })
	}
	for _, m := range ec.members {
		if err := m.waitHealthy(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.endpoints(), DialTimeout: 5 * time.Second, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ec.cli = cli
	return ec
}

// endpoints lists every member's client URL.
func (ec *etcdCluster) endpoints() []string {
	var eps []string
	for _, m := range ec.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// flag is the --etcd-endpoints value for felt.
func (ec *etcdCluster) flag() string { return strings.Join(ec.endpoints(), ",") }

// leader returns the index of the current leader.
func (ec *etcdCluster) leader(ctx context.Context) (int, error) {
	for i, m := range ec.members {
		select {
		case <-m.done:
			continue
		default:
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := ec.cli.Status(sctx, m.hostPort())
		cancel()
		if err != nil {
			continue
		}
		if st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no member says it leads")
}

func (m *etcdMember) start() error {
	logf, err := os.OpenFile(m.dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(etcdBinary,
		"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", "feltfault", "--logger", "zap", "--log-level", "warn")
	m.cmd.Args = append(m.cmd.Args, m.extra...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	// Killed with the test binary, whatever happens.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		logf.Close()
		close(done)
	}(m.cmd, m.done)
	return nil
}

func (m *etcdMember) hostPort() string { return m.clientURL[strings.Index(m.clientURL, "//")+2:] }

// kill sends SIGKILL and waits for the exit; a stopped member is left alone.
func (m *etcdMember) kill() {
	if m.cmd == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Kill()
	<-m.done
}

// killAll kills every member, as a power cut would.
func (ec *etcdCluster) killAll() {
	for _, m := range ec.members {
		m.kill()
	}
}

// restartAll starts every killed member again on its data dir and ports and
// waits until all are healthy (a quorum must be up before any is).
func (ec *etcdCluster) restartAll() {
	ec.t.Helper()
	for _, m := range ec.members {
		select {
		case <-m.done:
			if err := m.start(); err != nil {
				ec.t.Fatal(err)
			}
		default:
		}
	}
	for _, m := range ec.members {
		if err := m.waitHealthy(30 * time.Second); err != nil {
			ec.t.Fatal(err)
		}
	}
}

// waitHealthy waits until the member reports a leader (etcdtest.WaitHealthy).
func (m *etcdMember) waitHealthy(within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := etcdtest.WaitHealthy(ctx, m.hc, m.clientURL, m.done); err != nil {
		log, _ := os.ReadFile(m.dir + ".log")
		return fmt.Errorf("etcd member %s: %w; log tail:\n%s", m.name, err, netns.TailLines(string(log), 10, ""))
	}
	return nil
}
