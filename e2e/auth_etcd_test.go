package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEtcdAuth: Debian's etcd with authentication on (a user "felt" with a
// role that may read and write only the prefix). `felt config set`,
// `felt agent` and `felt leases` work with --etcd-username/--etcd-password;
// a wrong password and a missing one fail with errors that say so.
//
// Regression test: without credentials the error was etcd's bare "user name
// is empty".
func TestEtcdAuth(t *testing.T) {
	c := newCluster(t, 2, netConfig("udp"))
	ec := newEtcdCluster(t, c.lab.Gateway(), 1)
	for _, step := range [][]string{
		{"user", "add", "root:rootpw"}, {"role", "add", "root"}, {"user", "grant-role", "root", "root"},
		{"user", "add", "felt:s3cret"}, {"role", "add", "flannel"},
		{"role", "grant-permission", "flannel", "--prefix=true", "readwrite", "/coreos.com/network/"},
		{"user", "grant-role", "felt", "flannel"}, {"auth", "enable"},
	} {
		args := append([]string{"--endpoints", ec.flag()}, step...)
		if out, err := exec.CommandContext(c.ctx, "etcdctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", step, err, out)
		}
	}
	ep := []string{"--etcd-endpoints", ec.flag(), "--etcd-dial-timeout", "2s", "--etcd-request-timeout", "3s"}
	good := append(append([]string{}, ep...), "--etcd-username", "felt", "--etcd-password", "s3cret")
	feltRun := func(args ...string) (string, error) {
		out, err := exec.CommandContext(c.ctx, felt(t), args...).CombinedOutput()
		return string(out), err
	}
	if out, err := feltRun(append(append([]string{"config", "set"}, good...), netConfig("udp"))...); err != nil {
		t.Fatalf("felt config set with a password: %v\n%s", err, out)
	}
	for _, h := range c.lab.Hosts {
		c.start(h, good...)
	}
	for _, h := range c.lab.Hosts {
		c.waitPeers(h, 1, 10*time.Second)
	}
	if err := pingEventually(c.ctx, c.lab.Hosts[0], c.tunAddr(c.lab.Hosts[1]), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := feltRun(append([]string{"leases"}, good...)...)
	if err != nil || strings.Count(out, "udp") != 2 {
		t.Fatalf("felt leases with a password: %v, want 2 udp leases:\n%s", err, out)
	}
	for _, bad := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", append(append([]string{}, ep...), "--etcd-username", "felt", "--etcd-password", "nope"), "--etcd-password"},
		{"no credentials", ep, "authentication enabled: give --etcd-username"},
	} {
		out, err := feltRun(append([]string{"leases"}, bad.args...)...)
		t.Logf("felt leases with %s: %v: %s", bad.name, err, strings.TrimSpace(out))
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("felt leases with %s: want a failure saying %q", bad.name, bad.want)
		}
	}
}
