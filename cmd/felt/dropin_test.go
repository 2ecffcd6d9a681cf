package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/feltnet/felt/agent"
)

func TestAgentArgs(t *testing.T) {
	for _, tt := range []struct {
		argv0 string
		args  []string
		want  []string
	}{
		{"/usr/bin/flanneld", []string{"-etcd-prefix=/x"}, []string{"agent", "-etcd-prefix=/x"}},
		{"flanneld", nil, []string{"agent"}},
		{"flanneld", []string{"--help"}, []string{"agent", "--help"}},
		{"/usr/local/bin/felt", []string{"--iface", "eth0"}, []string{"agent", "--iface", "eth0"}},
		{"felt", []string{"-version"}, []string{"agent", "-version"}},
		{"felt", []string{"-h"}, []string{"-h"}},
		{"felt", []string{"--help"}, []string{"--help"}},
		{"felt", []string{"status"}, []string{"status"}},
		{"felt", nil, nil},
	} {
		if got := agentArgs(tt.argv0, tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("agentArgs(%q, %q) = %q, want %q", tt.argv0, tt.args, got, tt.want)
		}
	}
}

// agentConfig runs `felt <args>` with agent.Run replaced, and returns the
// Config the flags made.
func agentConfig(t *testing.T, args ...string) (agent.Config, result) {
	t.Helper()
	var got agent.Config
	old := runAgent
	runAgent = func(_ context.Context, c agent.Config, _ *zap.Logger) error { got = c; return nil }
	defer func() { runAgent = old }()
	return got, feltWith(t, agentArgs("felt", args), nil)
}

func feltWith(t *testing.T, args []string, level *zap.AtomicLevel) result {
	t.Helper()
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, log: zap.NewNop(), level: level, now: time.Now}
	code := run(context.Background(), args, e)
	return result{code, out.String(), errb.String()}
}

// TestDropinFlags: every flag flanneld's --help lists is accepted, single-
// or double-dash, and lands in the agent's Config.
func TestDropinFlags(t *testing.T) {
	var got agent.Config
	old := runAgent
	runAgent = func(_ context.Context, c agent.Config, _ *zap.Logger) error { got = c; return nil }
	defer func() { runAgent = old }()
	r := feltWith(t, agentArgs("/usr/bin/flanneld", []string{
		"-etcd-endpoints=http://10.0.0.1:2379", "-etcd-prefix=/coreos.com/network", "-etcd-keyfile=", "-etcd-certfile=",
		"-etcd-cafile=", "-etcd-username=u", "-etcd-password=p",
		"-iface=eth1", "--iface-regex", "^10\\.9\\.[0-9]{1,3}\\.", "-iface-regex=eth.*", "-iface-can-reach=10.9.0.1",
		"-subnet-file=/tmp/x/subnet.env", "-public-ip=10.9.0.5", "-public-ipv6=fd00::5", "-subnet-lease-renew-margin=30",
		"-ip-masq", "-ip-masq-fully-random-disable", "-kube-subnet-mgr=false", "-kube-annotation-prefix=flannel.alpha.coreos.com",
		"-healthz-ip=127.0.0.1", "-healthz-port=8471", "-iptables-resync=7", "-iptables-forward-rules=false",
		"-ip-blackhole-route", "-net-config-path=/etc/kube-flannel/net-conf.json", "-set-node-network-unavailable=true",
		"-v", "2", "-vmodule=", "-log_backtrace_at=",
	}), nil)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := agent.Config{
		Ifaces: []string{"eth1"}, IfaceRegex: []string{`^10\.9\.[0-9]{1,3}\.`, "eth.*"}, IfaceCanReach: "10.9.0.1",
		SubnetFile: "/tmp/x/subnet.env", RenewMargin: 30 * time.Minute, IPMasq: true, NoRandomFully: true,
		HealthzIP: "127.0.0.1", HealthzPort: 8471, Resync: 7 * time.Second, ForwardRules: false, BlackholeRoute: true,
	}
	if got.Etcd.Endpoints[0] != "http://10.0.0.1:2379" || got.Etcd.Prefix != "/coreos.com/network" || got.Etcd.Username != "u" {
		t.Errorf("etcd options %+v", got.Etcd)
	}
	if !slices.Equal(got.Ifaces, want.Ifaces) || !slices.Equal(got.IfaceRegex, want.IfaceRegex) || got.IfaceCanReach != want.IfaceCanReach ||
		got.SubnetFile != want.SubnetFile || got.RenewMargin != want.RenewMargin || got.IPMasq != want.IPMasq ||
		got.NoRandomFully != want.NoRandomFully || got.HealthzIP != want.HealthzIP || got.HealthzPort != want.HealthzPort ||
		got.Resync != want.Resync || got.ForwardRules != want.ForwardRules || got.BlackholeRoute != want.BlackholeRoute ||
		got.PublicIP.String() != "10.9.0.5" || got.PublicIPv6.String() != "fd00::5" {
		t.Errorf("config %+v\nwant %+v", got, want)
	}
}

// TestDropinEnv: a seed's FLANNELD_* environment reaches the same fields;
// FLANNELD_IFACE_REGEX keeps its commas.
func TestDropinEnv(t *testing.T) {
	t.Setenv("FLANNELD_ETCD_ENDPOINTS", "http://10.0.0.2:2379")
	t.Setenv("FLANNELD_ETCD_PREFIX", "/coreos.com/network")
	t.Setenv("FLANNELD_IFACE_REGEX", "^eth[0-9]{1,2}$")
	t.Setenv("FLANNELD_IPTABLES_RESYNC", "3")
	t.Setenv("FLANNELD_IP_BLACKHOLE_ROUTE", "true")
	got, r := agentConfig(t, "-ip-masq")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.Etcd.Endpoints[0] != "http://10.0.0.2:2379" || !slices.Equal(got.IfaceRegex, []string{"^eth[0-9]{1,2}$"}) ||
		got.Resync != 3*time.Second || !got.BlackholeRoute || !got.IPMasq {
		t.Errorf("config %+v", got)
	}
}

// TestDropinRefusals: the Kubernetes subnet manager is refused naming etcd
// mode; bad values name the flag and the rule.
func TestDropinRefusals(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--kube-subnet-mgr"}, "--kube-subnet-mgr=true: felt supports flanneld's etcd mode only"},
		{[]string{"--kubeconfig-file=/root/.kube/config"}, "etcd mode only"},
		{[]string{"--kube-api-url", "https://10.0.0.1:6443"}, "--kube-api-url=https://10.0.0.1:6443"},
		{[]string{"--iptables-resync=0"}, "--iptables-resync 0: must be at least 1"},
		{[]string{"--iface-regex", "eth("}, `--iface-regex "eth(": not a regular expression`},
		{[]string{"--iface-can-reach", "host.example"}, `--iface-can-reach "host.example": must be an IPv4 address`},
		{[]string{"-v", "-1"}, "-v -1: must be 0 or more"},
	} {
		_, r := agentConfig(t, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("felt %q: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.msg)
		}
	}
	t.Setenv("FLANNELD_KUBE_SUBNET_MGR", "true")
	if _, r := agentConfig(t, "agent"); r.code != 2 || !strings.Contains(r.stderr, "etcd mode only") {
		t.Errorf("FLANNELD_KUBE_SUBNET_MGR=true: exit %d, %q", r.code, r.stderr)
	}
}

// TestDropinVersionAndVerbosity: --version prints and exits without running
// the agent; -v 1 turns on debug logs, -v 0 leaves info.
func TestDropinVersionAndVerbosity(t *testing.T) {
	ran := false
	old := runAgent
	runAgent = func(context.Context, agent.Config, *zap.Logger) error { ran = true; return nil }
	defer func() { runAgent = old }()
	r := feltWith(t, agentArgs("flanneld", []string{"--version"}), nil)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "felt ") || ran {
		t.Errorf("flanneld --version: exit %d, stdout %q, agent ran %v", r.code, r.stdout, ran)
	}
	for _, tt := range []struct {
		v    string
		want zapcore.Level
	}{{"0", zapcore.InfoLevel}, {"1", zapcore.DebugLevel}, {"4", zapcore.DebugLevel}} {
		level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
		if r := feltWith(t, agentArgs("flanneld", []string{"-v", tt.v}), &level); r.code != 0 || level.Level() != tt.want {
			t.Errorf("-v %s: exit %d, level %v, want %v (%s)", tt.v, r.code, level.Level(), tt.want, r.stderr)
		}
	}
}
