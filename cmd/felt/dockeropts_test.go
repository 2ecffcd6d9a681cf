package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSubnetEnv(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "subnet.env")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const sampleEnv = "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=%s\n"

// TestDockerOpts checks mk-docker-opts.sh's output for the flag
// combinations it has, spacing included.
func TestDockerOpts(t *testing.T) {
	for _, tt := range []struct {
		name, masq string
		args       []string
		prior      string // DOCKER_OPTS (or -k) in the environment
		want       string
	}{
		{name: "default, flanneld masquerades", masq: "true", want: `DOCKER_OPT_BIP="--bip=10.5.52.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=false"
DOCKER_OPT_MTU="--mtu=1472"
DOCKER_OPTS=" --bip=10.5.52.1/24 --ip-masq=false --mtu=1472"
`},
		{name: "flanneld does not masquerade", masq: "false", args: []string{"-c"},
			want: "DOCKER_OPTS=\" --bip=10.5.52.1/24 --ip-masq=true --mtu=1472\"\n"},
		{name: "-m leaves out ip-masq", masq: "true", args: []string{"-i", "-m"},
			want: "DOCKER_OPT_BIP=\"--bip=10.5.52.1/24\"\nDOCKER_OPT_MTU=\"--mtu=1472\"\n"},
		{name: "-k keeps the prior value", masq: "true", args: []string{"-c", "-k", "FELT_TEST_OPTS"}, prior: "--debug",
			want: "FELT_TEST_OPTS=\"--debug  --bip=10.5.52.1/24 --ip-masq=false --mtu=1472\"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := "DOCKER_OPTS"
			for i, a := range tt.args {
				if a == "-k" {
					key = tt.args[i+1]
				}
			}
			t.Setenv(key, tt.prior)
			p := writeSubnetEnv(t, strings.Replace(sampleEnv, "%s", tt.masq, 1))
			r := felt(t, append([]string{"docker-opts", "--subnet-file", p}, tt.args...)...)
			if r.code != 0 || r.stdout != tt.want {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, tt.want)
			}
		})
	}
}

func TestDockerOptsFile(t *testing.T) {
	t.Setenv("DOCKER_OPTS", "")
	p := writeSubnetEnv(t, strings.Replace(sampleEnv, "%s", "true", 1))
	out := filepath.Join(t.TempDir(), "docker_opts.env")
	if r := felt(t, "docker-opts", "-f", p, "-d", out); r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and the options in the file only", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "DOCKER_OPTS=\" --bip=10.5.52.1/24 --ip-masq=false --mtu=1472\"\n"; !strings.HasSuffix(string(b), want) {
		t.Fatalf("%s:\n%s\nwant it to end with %s", out, b, want)
	}
}

func TestDockerOptsBadInput(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		args          []string
		code          int
		msg           string
	}{
		{name: "missing file", args: []string{"--subnet-file", "/nonexistent/subnet.env"}, code: 1, msg: "--subnet-file /nonexistent/subnet.env: no such file"},
		{name: "bad mtu", content: "FLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=big\n", code: 1, msg: `FLANNEL_MTU "big": must be an integer`},
		{name: "bad ipmasq", content: "FLANNEL_IPMASQ=yes-please\n", code: 1, msg: `FLANNEL_IPMASQ "yes-please": must be true or false`},
		{name: "bad key", content: sampleEnv, args: []string{"-k", "1BAD"}, code: 2, msg: `-k "1BAD": must be a shell variable name`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.content != "" {
				args = append([]string{"--subnet-file", writeSubnetEnv(t, tt.content)}, args...)
			}
			r := felt(t, append([]string{"docker-opts"}, args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tt.code, tt.msg)
			}
		})
	}
}
