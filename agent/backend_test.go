package agent

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns/netnstest"
	"github.com/feltnet/felt/router"
)

func TestKindOf(t *testing.T) {
	for typ, want := range map[string]backendKind{"udp": packetBackend, "vxlan": packetBackend, "wireguard": wireguardBackend,
		"host-gw": routeBackend, "alloc": leaseOnly, "extension": leaseOnly} {
		if got, err := kindOf(typ); err != nil || got != want {
			t.Errorf("kindOf(%q) = %v, %v; want %v", typ, got, err, want)
		}
	}
	if _, err := kindOf("ipip"); err == nil || !strings.Contains(err.Error(), `"ipip"`) {
		t.Errorf("kindOf(ipip): %v", err)
	}
}

func TestPeerSetOwnTypeOnly(t *testing.T) {
	hostgw := lease.Lease{Subnet: netip.MustParsePrefix("10.5.9.0/24"), Attrs: lease.NewHostGWAttrs(netip.MustParseAddr("192.168.1.9"))}
	ext := lease.Lease{Subnet: netip.MustParsePrefix("10.5.8.0/24"), Attrs: lease.NewExtensionAttrs(netip.MustParseAddr("192.168.1.8"), "x", true)}
	vx := vxlanLease(t, "10.5.7.0/24", "192.168.1.7", "c6:d2:32:6f:8f:44")
	for _, tc := range []struct {
		backend string
		want    lease.Lease
	}{{"host-gw", hostgw}, {"extension", ext}} {
		s := newPeerSet(testNetConfig(t, tc.backend), lease.Lease{}, zap.NewNop())
		s.apply([]lease.Event{{Type: lease.Added, Lease: hostgw}, {Type: lease.Added, Lease: ext}, {Type: lease.Added, Lease: vx}})
		peers := s.list()
		// No packet path: the peer's address has no port.
		if len(peers) != 1 || peers[0].Subnet != tc.want.Subnet || peers[0].Addr != netip.AddrPortFrom(tc.want.Attrs.PublicIP, 0) {
			t.Errorf("%s node: peers = %+v, want only %s", tc.backend, peers, tc.want.Subnet)
		}
		if r := s.rejectedList(); len(r) != 2 || r[0].Rule != ruleBackendType {
			t.Errorf("%s node: rejected = %+v", tc.backend, r)
		}
	}
}

// TestExtensionCommands runs the four commands through a script that
// records its arguments, environment and stdin, as the e2e test does with
// a real agent.
func TestExtensionCommands(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	script := filepath.Join(dir, "cmd.sh")
	body := "#!/bin/sh\n{ echo \"args=$*\"; echo \"SUBNET=$SUBNET PUBLIC_IP=$PUBLIC_IP NETWORK=$NETWORK IPV6SUBNET=$IPV6SUBNET PUBLIC_IPV6=$PUBLIC_IPV6\"; " +
		"echo \"stdin=$(od -An -tx1 | tr -d ' \\n')\"; } >> " + rec + "\necho out-$1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FELT_TEST_WORD", "w")
	e := newExtension(lease.ExtensionCommands{PreStartupCommand: script + " pre", PostStartupCommand: script + " post $SUBNET",
		SubnetAddCommand: script + "  add ${PUBLIC_IP} $FELT_TEST_WORD", SubnetRemoveCommand: script + " rm"},
		netip.MustParsePrefix("10.5.0.0/16"), zap.NewNop())
	out, ran, err := e.preStartup()
	if err != nil || !ran || out != "out-pre" {
		t.Fatalf("preStartup = %q, %v, %v", out, ran, err)
	}
	own := lease.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24")}
	if err := e.postStartup(own, netip.MustParseAddr("192.168.1.1")); err != nil {
		t.Fatal(err)
	}
	peer := lease.Lease{Subnet: netip.MustParsePrefix("10.5.2.0/24"), Attrs: lease.NewExtensionAttrs(netip.MustParseAddr("192.168.1.2"), "peer-data", true)}
	other := lease.Lease{Subnet: netip.MustParsePrefix("10.5.3.0/24"), Attrs: lease.NewHostGWAttrs(netip.MustParseAddr("192.168.1.3"))}
	all := func(lease.Lease) bool { return true }
	e.apply([]lease.Event{{Type: lease.Added, Lease: other}, {Type: lease.Added, Lease: peer}, {Type: lease.Removed, Lease: peer}}, all)
	got, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"args=pre", "SUBNET= PUBLIC_IP= NETWORK= IPV6SUBNET= PUBLIC_IPV6=", "stdin=0a",
		"args=post 10.5.1.0/24", "SUBNET=10.5.1.0/24 PUBLIC_IP=192.168.1.1 NETWORK=10.5.0.0/16 IPV6SUBNET=::/0 PUBLIC_IPV6=<nil>", "stdin=0a",
		"args=add 192.168.1.2 w", "SUBNET=10.5.2.0/24 PUBLIC_IP=192.168.1.2 NETWORK= IPV6SUBNET= PUBLIC_IPV6=", "stdin=706565722d646174610a",
		"args=rm", "SUBNET=10.5.2.0/24 PUBLIC_IP=192.168.1.2 NETWORK= IPV6SUBNET= PUBLIC_IPV6=", "stdin=706565722d646174610a",
	}, "\n") + "\n"
	if string(got) != want {
		t.Fatalf("recorded:\n%s\nwant:\n%s", got, want)
	}
	bad := newExtension(lease.ExtensionCommands{PreStartupCommand: "/bin/false"}, netip.Prefix{}, zap.NewNop())
	if _, _, err := bad.preStartup(); err == nil || !strings.Contains(err.Error(), "Backend.PreStartupCommand") {
		t.Fatalf("failing pre-startup: %v", err)
	}
}

// TestPeerRoutesRecategorise moves a DirectRouting peer between direct and
// tunnelled (the on-link answer is faked; the routes are real, in a
// throwaway namespace).
func TestPeerRoutesRecategorise(t *testing.T) {
	netnstest.Enter(t)
	for _, args := range [][]string{{"link", "add", "u0", "type", "veth", "peer", "name", "u1"}, {"link", "set", "u1", "up"},
		{"addr", "add", "192.0.2.1/24", "dev", "u0"}, {"link", "set", "u0", "up"}} {
		netnstest.Output(t, "ip", args...)
	}
	onLink := true
	r := newPeerRoutes(0, true, zap.NewNop())
	r.onLink = func(netip.Addr) (bool, error) { return onLink, nil }
	sn := netip.MustParsePrefix("10.5.2.0/24")
	routes := func() string {
		out, _ := exec.Command("ip", "route", "show", sn.String()).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	r.setPeers([]router.Peer{{Subnet: sn, Addr: netip.MustParseAddrPort("192.0.2.7:8472")}})
	if got := routes(); got != "10.5.2.0/24 via 192.0.2.7 dev u0" || r.path(sn) != pathDirect {
		t.Errorf("on-link peer: route %q, path %s", got, r.path(sn))
	}
	onLink = false
	r.check()
	if got := routes(); got != "" || r.path(sn) != pathTunnelled {
		t.Errorf("peer gone off-link: route %q, path %s", got, r.path(sn))
	}
	onLink = true
	r.check()
	if got := routes(); got == "" || r.path(sn) != pathDirect {
		t.Errorf("peer back on-link: route %q, path %s", got, r.path(sn))
	}
	r.setPeers(nil)
	if got := routes(); got != "" || r.path(sn) != pathTunnelled {
		t.Errorf("peer removed: route %q", got)
	}
}

// listedWatcher is a leaseWatcher whose first listing the test completes.
type listedWatcher struct{ listed chan struct{} }

func (w listedWatcher) WatchLeases(context.Context, netip.Prefix, func([]lease.Event)) error {
	return nil
}
func (w listedWatcher) SetOwn(netip.Prefix)     {}
func (w listedWatcher) Listed() <-chan struct{} { return w.listed }

// TestReadyWhenListed: host-gw is ready only after the first lease listing
// was routed; the kinds with a TUN (and alloc, extension) at once.
func TestReadyWhenListed(t *testing.T) {
	for _, tc := range []struct {
		kind backendKind
		wait bool
	}{{packetBackend, false}, {wireguardBackend, false}, {leaseOnly, false}, {routeBackend, true}} {
		w := listedWatcher{listed: make(chan struct{})}
		n := &node{plane: &plane{kind: tc.kind}, watcher: w, log: zap.NewNop(), notify: notifier{log: zap.NewNop()}}
		got := make(chan bool, 1)
		go func() { got <- n.readyWhenListed(t.Context()) }()
		if tc.wait {
			select {
			case <-got:
				t.Fatalf("kind %v: ready before the first listing", tc.kind)
			case <-time.After(50 * time.Millisecond):
			}
			close(w.listed)
		}
		if !<-got {
			t.Errorf("kind %v: not ready", tc.kind)
		}
	}
	// ctx ended before the listing: not ready.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n := &node{plane: &plane{kind: routeBackend}, watcher: listedWatcher{listed: make(chan struct{})}, log: zap.NewNop(),
		notify: notifier{log: zap.NewNop()}}
	if n.readyWhenListed(ctx) {
		t.Error("ready after ctx ended")
	}
}

// TestRemoveStaleTUN: a backend without a TUN deletes the persistent TUN an
// earlier udp or vxlan run left, and leaves a link of that name that is not
// a TUN alone (real links, in a throwaway namespace).
func TestRemoveStaleTUN(t *testing.T) {
	inNewNetns(t, func() {
		ip := func(args ...string) {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Errorf("ip %v: %v: %s", args, err, out)
			}
		}
		exists := func(name string) bool { return exec.Command("ip", "link", "show", name).Run() == nil }
		if err := removeStaleTUN("felt0", zap.NewNop()); err != nil {
			t.Errorf("no TUN at all: %v", err)
		}
		ip("tuntap", "add", "dev", "felt0", "mode", "tun")
		ip("addr", "add", "10.5.1.0/32", "dev", "felt0")
		if err := removeStaleTUN("felt0", zap.NewNop()); err != nil || exists("felt0") {
			t.Errorf("stale TUN: err %v, still there: %v", err, exists("felt0"))
		}
		ip("link", "add", "felt0", "type", "veth", "peer", "name", "felt0p")
		if err := removeStaleTUN("felt0", zap.NewNop()); err != nil || !exists("felt0") {
			t.Errorf("a veth named felt0: err %v, deleted: %v", err, !exists("felt0"))
		}
		ip("tuntap", "add", "dev", "tap7", "mode", "tap")
		if err := removeStaleTUN("tap7", zap.NewNop()); err != nil || !exists("tap7") {
			t.Errorf("a TAP: err %v, deleted: %v", err, !exists("tap7"))
		}
	})
}
