package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease/etcdtest"
)

// tlsFlags are felt's --etcd-* TLS flags for pki's client pair, with ca as
// the CA.
func tlsFlags(pki *etcdtest.PKI, ca string) []string {
	return []string{"--etcd-cafile", ca, "--etcd-certfile", pki.ClientCert, "--etcd-keyfile", pki.ClientKey}
}

// TestEtcdTLS: Debian's etcd serving clients only over TLS and requiring a
// client certificate signed by the test's CA (--cert-file, --key-file,
// --client-cert-auth, --trusted-ca-file). `felt config set`, `felt agent`
// and `felt leases` work with --etcd-cafile/--etcd-certfile/--etcd-keyfile;
// with a CA that did not sign etcd's certificate, or without a client
// certificate, they fail with an error that says so.
func TestEtcdTLS(t *testing.T) {
	c := newCluster(t, 2, netConfig("vxlan"))
	pki := etcdtest.NewPKI(t, c.lab.Gateway())
	ec := newEtcdClusterTLS(t, c.lab.Gateway(), 1, pki)
	ep := []string{"--etcd-endpoints", ec.flag(), "--etcd-dial-timeout", "2s", "--etcd-request-timeout", "3s"}
	good := append(append([]string{}, ep...), tlsFlags(pki, pki.CA)...)
	feltRun := func(args ...string) (string, error) {
		out, err := exec.CommandContext(c.ctx, felt(t), args...).CombinedOutput()
		return string(out), err
	}

	if out, err := feltRun(append(append([]string{"config", "set"}, good...), netConfig("vxlan"))...); err != nil {
		t.Fatalf("felt config set over TLS: %v\n%s", err, out)
	}
	hosts := c.lab.Hosts
	for _, h := range hosts {
		c.start(h, good...)
	}
	for _, h := range hosts {
		c.waitPeers(h, 1, 10*time.Second)
	}
	if err := pingEventually(c.ctx, hosts[0], c.tunAddr(hosts[1]), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := feltRun(append([]string{"leases"}, good...)...)
	if err != nil {
		t.Fatalf("felt leases over TLS: %v\n%s", err, out)
	}
	for _, h := range hosts {
		if sn := c.status(h).Subnet; !strings.Contains(out, sn) {
			t.Errorf("felt leases over TLS does not list %s's lease %s:\n%s", h.Name, sn, out)
		}
	}
	t.Logf("over TLS with client certificates: config set, 2 agents, ping, felt leases:\n%s", out)

	for _, bad := range []struct {
		name string
		args []string
		want []string // all of these in the error
	}{
		{"wrong CA", append(append([]string{}, ep...), tlsFlags(pki, pki.OtherCA)...), []string{"TLS failed", "certificate signed by unknown authority", "--etcd-cafile"}},
		{"no client certificate", append(append([]string{}, ep...), "--etcd-cafile", pki.CA), []string{"TLS failed", "--etcd-certfile"}},
	} {
		out, err := feltRun(append([]string{"leases"}, bad.args...)...)
		if err == nil {
			t.Errorf("felt leases with %s succeeded:\n%s", bad.name, out)
			continue
		}
		t.Logf("felt leases with %s: %v:\n%s", bad.name, err, strings.TrimSpace(out))
		for _, w := range append(bad.want, ec.members[0].hostPort()) {
			if !strings.Contains(out, w) {
				t.Errorf("felt leases with %s: error does not say %q:\n%s", bad.name, w, out)
			}
		}
	}

	// felt agent with the wrong CA stops at once with the same cause.
	h := hosts[0]
	args := append([]string{"agent", "--iface", h.Iface, "--tun-name", "feltbad0", "--subnet-file", t.TempDir() + "/subnet.env"}, ep...)
	p, err := h.Start(c.ctx, felt(t), append(args, tlsFlags(pki, pki.OtherCA)...)...)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatalf("felt agent with the wrong CA still runs after 30 s:\n%s", p.Log())
	}
	if p.Wait() == nil || !strings.Contains(p.Log(), "TLS failed") || !strings.Contains(p.Log(), "unknown authority") {
		t.Errorf("felt agent with the wrong CA: exit %v, log:\n%s", p.Wait(), p.Log())
	} else {
		t.Logf("felt agent with the wrong CA: %v: %s", p.Wait(), strings.TrimSpace(p.LogTail(1)))
	}
}
