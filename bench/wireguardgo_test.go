package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// wgLab is two hosts on a veth pair, as a run's lab but without etcd or
// servers, for the wireguard-go scenario's own tests.
func wgLab(t *testing.T) *underlayLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and TUN devices")
	}
	for _, tool := range WireGuardGo.needsTools() {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (Debian: apt-get install wireguard-go wireguard-tools)", tool)
		}
	}
	name := fmt.Sprintf("fbw%d", os.Getpid()%100000)
	lab, err := netns.NewLab(t.Context(), netns.LabConfig{Name: name, Hosts: 2, Topology: netns.Pair,
		Underlay: netip.MustParsePrefix("10.99.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	l := &underlayLab{u: Veth, name: name, lab: lab, client: lab.Hosts[0], server: lab.Hosts[1], dir: t.TempDir()}
	t.Cleanup(func() {
		if err := l.close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// wgLeftovers lists what of the lab's wireguard-go devices is left: UAPI
// sockets and links.
func wgLeftovers(t *testing.T, l *underlayLab) []string {
	t.Helper()
	var left []string
	for i, h := range []*netns.Host{l.client, l.server} {
		dev := wgGoDev(l.name, i)
		if _, err := os.Stat(filepath.Join(wgSocketDir, dev+".sock")); err == nil {
			left = append(left, "socket "+dev+".sock")
		}
		if h.Command(context.Background(), "ip", "link", "show", dev).Run() == nil {
			left = append(left, "link "+dev+" in "+h.Name)
		}
	}
	return left
}

// The wireguard-go scenario comes up (a ping crosses it), and taking it down
// leaves no process, socket or link.
func TestWireGuardGoUpDown(t *testing.T) {
	l := wgLab(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dst, procs, err := l.wireguardGoUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dst != wgGoSubnet(1).Addr() || len(procs) != 2 {
		t.Errorf("dst %s, %d processes", dst, len(procs))
	}
	out, err := l.client.Command(ctx, "wg", "show", wgGoDev(l.name, 0), "peers").Output()
	if err != nil || len(strings.Fields(string(out))) != 1 {
		t.Errorf("wg show peers: %q, %v", out, err)
	}
	if err := l.wireguardGoDown(ctx, procs); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Errorf("wireguard-go in %s still runs", p.Host.Name)
		}
	}
	if left := wgLeftovers(t, l); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// When the server's wireguard-go cannot start (a link of its device's name
// is in the way), wireguardGoUp says so with its log and takes down the
// client's, which was running: no process, socket or link is left.
func TestWireGuardGoUpFails(t *testing.T) {
	l := wgLab(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := runIn(ctx, l.server, "ip", "link", "add", wgGoDev(l.name, 1), "type", "veth", "peer", "name", l.name+"p"); err != nil {
		t.Fatal(err)
	}
	_, procs, err := l.wireguardGoUp(ctx)
	if err == nil || procs != nil {
		t.Fatalf("wireguardGoUp: %v, %d processes; want an error", err, len(procs))
	}
	t.Logf("error: %v", err)
	if !strings.HasPrefix(err.Error(), "wireguard-go could not start: wireguard-go "+wgGoDev(l.name, 1)+" in "+l.server.Name+" exited: ") ||
		!strings.Contains(err.Error(), "--- wireguard-go in "+l.server.Name) {
		t.Errorf("error %q", err)
	}
	if left := wgLeftovers(t, l); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if out, _ := exec.Command("pgrep", "-f", "wireguard-go "+l.name).Output(); len(out) > 0 {
		t.Errorf("wireguard-go still runs: %s", out)
	}
}
