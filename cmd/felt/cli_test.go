package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/lease/etcdtest"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// felt runs one command in-process, as main would, with buffers and a
// quiet logger.
func felt(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, log: zap.NewNop(), now: time.Now}
	code := run(context.Background(), args, e)
	return result{code, out.String(), errb.String()}
}

func TestUsageExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage: felt"},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"config"}, 2, "felt config needs a subcommand"},
		{[]string{"config", "rm"}, 2, `unknown subcommand "rm"`},
		{[]string{"config", "set"}, 2, "want one argument"},
		{[]string{"leases", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"leases", "-h"}, 0, "-etcd-endpoints"},
		{[]string{"version"}, 0, "felt dev"},
	} {
		r := felt(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.msg) {
			t.Errorf("felt %q: exit %d, output %q; want exit %d and %q", tt.args, r.code, r.stdout+r.stderr, tt.code, tt.msg)
		}
	}
}

// TestConfigSetInvalidNeedsNoEtcd: an invalid config is refused, naming the
// field, before any etcd is dialled (none listens on the endpoint given).
func TestConfigSetInvalidNeedsNoEtcd(t *testing.T) {
	r := felt(t, "config", "set", "--etcd-endpoints", "http://127.0.0.1:1", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":0}}`)
	if r.code != 1 || !strings.Contains(r.stderr, "config: Backend.VNI 0: must be in 1..16777215") {
		t.Errorf("exit %d, stderr %q; want 1 and the VNI rule", r.code, r.stderr)
	}
}

func TestConfigAndLeasesAgainstEtcd(t *testing.T) {
	etcdtest.Run(t, func(t *testing.T, s *etcdtest.Server) {
		ep := "--etcd-endpoints=" + s.Endpoint()
		prefix := "--etcd-prefix=/felt-test/network"

		r := felt(t, "config", "get", ep, prefix)
		if r.code != 1 || !strings.Contains(r.stderr, "flannel config not found") {
			t.Errorf("get before set: exit %d, %q", r.code, r.stderr)
		}

		cfgJSON := `{"Network": "10.5.0.0/16", "Backend": {"Type": "vxlan", "VNI": 4}}`
		r = felt(t, "config", "set", ep, prefix, cfgJSON)
		if r.code != 0 || !strings.Contains(r.stdout, "stored /felt-test/network/config: Network 10.5.0.0/16, /24 subnets 10.5.1.0-10.5.255.0, backend vxlan (UDP port 8472)") {
			t.Fatalf("set: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		r = felt(t, "config", "get", ep, prefix)
		if r.code != 0 || r.stdout != cfgJSON+"\n" {
			t.Errorf("get: exit %d, %q; want the JSON as given", r.code, r.stdout)
		}
		r = felt(t, "config", "get", "--effective", ep, prefix)
		if r.code != 0 || !strings.Contains(r.stdout, `"SubnetMax": "10.5.255.0"`) || !strings.Contains(r.stdout, `"VNI": 4`) {
			t.Errorf("get --effective: exit %d, %q", r.code, r.stdout)
		}

		// An invalid config fails naming the field and leaves the stored one.
		r = felt(t, "config", "set", ep, prefix, `{"Network":"10.5.0.0/16","SubnetLen":31}`)
		if r.code != 1 || !strings.Contains(r.stderr, "SubnetLen 31: must be at most 30") {
			t.Errorf("invalid set: exit %d, stderr %q", r.code, r.stderr)
		}
		if r = felt(t, "config", "get", ep, prefix); r.stdout != cfgJSON+"\n" {
			t.Errorf("after an invalid set the config is %q", r.stdout)
		}

		// The environment names the endpoint just as well as the flag.
		t.Setenv("FLANNELD_ETCD_ENDPOINTS", s.Endpoint())
		t.Setenv("FELT_ETCD_PREFIX", "/felt-test/network")
		if r = felt(t, "config", "get"); r.code != 0 || r.stdout != cfgJSON+"\n" {
			t.Errorf("get via environment: exit %d, %q, %q", r.code, r.stdout, r.stderr)
		}

		// Leases: two nodes with etcd leases, one reservation, one malformed key.
		cli := s.Client(t)
		store := etcdstore.New(cli, "/felt-test/network", etcdstore.Options{})
		ctx := context.Background()
		mac := net.HardwareAddr{0x0e, 0x2a, 0, 0, 0, 0x07}
		if _, _, err := store.Create(ctx, lease.Lease{Subnet: netip.MustParsePrefix("10.5.7.0/24"),
			Attrs: lease.NewVXLANAttrs(netip.MustParseAddr("192.0.2.7"), 4, mac)}, lease.TTL); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.Create(ctx, lease.Lease{Subnet: netip.MustParsePrefix("10.5.3.0/24"),
			Attrs: lease.NewUDPAttrs(netip.MustParseAddr("192.0.2.3"))}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "/felt-test/network/subnets/10.5.9.0-24", `{"PublicIP":"192.0.2.9","PublicIPv6":null}`); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "/felt-test/network/subnets/garbage", `{}`); err != nil {
			t.Fatal(err)
		}
		r = felt(t, "leases")
		if r.code != 0 {
			t.Fatalf("leases: exit %d, %q", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		want := []*regexp.Regexp{
			regexp.MustCompile(`^SUBNET +PUBLIC IP +BACKEND +VTEP MAC +EXPIRES IN$`),
			regexp.MustCompile(`^10\.5\.3\.0/24 +192\.0\.2\.3 +udp +- +(59m\d+s|1h0m0s)$`),
			regexp.MustCompile(`^10\.5\.7\.0/24 +192\.0\.2\.7 +vxlan +0e:2a:00:00:00:07 +2[34]h\d+m\d+s$`),
			regexp.MustCompile(`^10\.5\.9\.0/24 +192\.0\.2\.9 +udp +- +never$`),
		}
		if len(lines) != len(want) {
			t.Fatalf("leases table:\n%s\nwant %d lines", r.stdout, len(want))
		}
		for i, re := range want {
			if !re.MatchString(lines[i]) {
				t.Errorf("line %d %q does not match %s", i, lines[i], re)
			}
		}
		if !strings.Contains(r.stderr, "skipped 1 malformed key(s) under /felt-test/network/subnets") {
			t.Errorf("leases stderr %q: want the malformed key counted", r.stderr)
		}
	})
}

func TestLeasesNoEtcd(t *testing.T) {
	r := felt(t, "leases", "--etcd-endpoints=http://127.0.0.1:1", "--etcd-dial-timeout=300ms", "--etcd-request-timeout=500ms")
	if r.code != 1 || !strings.Contains(r.stderr, "http://127.0.0.1:1") {
		t.Errorf("exit %d, stderr %q; want 1 naming the endpoint", r.code, r.stderr)
	}
}

// felt leases shows the IPv6 side: subnet, PublicIPv6 and the v6 VtepMAC,
// and an IPv6-only lease with "-" for its IPv4 subnet and BackendData.
func TestWriteLeasesIPv6(t *testing.T) {
	mac4, _ := net.ParseMAC("c6:d2:32:6f:8f:44")
	mac6, _ := net.ParseMAC("9e:11:0a:5b:c3:01")
	ls := []lease.Lease{
		{IPv6Subnet: netip.MustParsePrefix("fd00:5:0:35::/64"),
			Attrs: lease.NewDualVXLANAttrs(netip.Addr{}, netip.MustParseAddr("fd00:64::4"), 1, nil, mac6)},
		{Subnet: netip.MustParsePrefix("10.5.52.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:34::/64"),
			Attrs: lease.NewDualVXLANAttrs(netip.MustParseAddr("192.168.64.3"), netip.MustParseAddr("fd00:64::3"), 1, mac4, mac6)},
	}
	var b strings.Builder
	if err := writeLeases(&b, ls, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"SUBNET", "IPV6", "SUBNET", "PUBLIC", "IP", "PUBLIC", "IPV6", "BACKEND", "VTEP", "MAC", "VTEP", "MAC", "V6", "EXPIRES", "IN"},
		{"10.5.52.0/24", "fd00:5:0:34::/64", "192.168.64.3", "fd00:64::3", "vxlan", "c6:d2:32:6f:8f:44", "9e:11:0a:5b:c3:01", "never"},
		{"-", "fd00:5:0:35::/64", "0.0.0.0", "fd00:64::4", "vxlan", "-", "9e:11:0a:5b:c3:01", "never"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), b.String())
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d = %q, want fields %q", i, l, want[i])
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestEtcdCommand runs `felt etcd` in-process, stores a config through it,
// then stops it as SIGINT would (the context ends).
func TestEtcdCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	clientURL, peerURL := "http://"+freePort(t), "http://"+freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, log: zap.NewNop(), now: time.Now}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"etcd", "--data-dir", dir, "--name", "t1",
			"--listen-client-urls", clientURL, "--listen-peer-urls", peerURL}, e)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	ready := false
	for !ready {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("felt etcd exited %d early: %s %s", code, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
			ready = strings.Contains(out.String(), "serving clients at "+clientURL)
		}
	}
	if r := felt(t, "config", "set", "--etcd-endpoints", clientURL, `{"Network":"10.9.0.0/16"}`); r.code != 0 {
		t.Fatalf("config set against felt etcd: %d %q", r.code, r.stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("felt etcd exited %d after the context ended: %s", code, errb.String())
	}
	done <- 0 // for the cleanup
	if _, err := os.Stat(filepath.Join(dir, "member")); err != nil {
		t.Errorf("no etcd data in %s: %v", dir, err)
	}
}

// TestEveryCommandHelp: every leaf of the command table answers -h with its
// usage line and exit 0, and refuses an unknown flag with exit 2.
func TestEveryCommandHelp(t *testing.T) {
	usage := map[string]string{
		"agent": "", "status": "", "etcd": "", "config get": "", "config set": " '<json>' | -", "leases": "",
		"bench": "", "demo": " | felt demo shell HOST[/CONTAINER] [CMD...] | felt demo down",
		"demo shell": " HOST[/CONTAINER] [CMD [ARGS...]]", "demo down": "", "docker-opts": "", "version": "",
	}
	seen := map[string]bool{}
	var walk func(path []string, cmds []command)
	walk = func(path []string, cmds []command) {
		for _, c := range cmds {
			p := append(slices.Clone(path), c.name)
			walk(p, c.subs)
			if c.flags == nil {
				continue
			}
			name := strings.Join(p, " ")
			seen[name] = true
			want := "usage: felt " + name + " [flags]" + usage[name] + "\n"
			if r := felt(t, append(p, "-h")...); r.code != 0 || !strings.HasPrefix(r.stderr, want) {
				t.Errorf("felt %s -h: exit %d, stderr %q; want 0 and %q", name, r.code, r.stderr, want)
			}
			if r := felt(t, append(p, "--no-such-flag")...); r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined: -no-such-flag") {
				t.Errorf("felt %s --no-such-flag: exit %d, stderr %q; want 2", name, r.code, r.stderr)
			}
		}
	}
	walk(nil, commands)
	for name := range usage {
		if !seen[name] {
			t.Errorf("felt %s: not in the command table", name)
		}
	}
}
