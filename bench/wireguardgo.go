package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/netns"
)

// The wireguard-go scenario: Debian's wireguard-go binary in each host,
// configured with wg as flannel's wireguard backend configures its device:
// a key from wg genkey, ListenPort on the underlay, one peer per other host
// with endpoint its underlay address and AllowedIPs its overlay subnet, MTU
// underlay − 80, <subnet>.0/32 on the device and the network routed
// through it.
const (
	wgGoNetOf = "10.12.%d.0" // host i has 10.12.(i+1).0/24
	wgGoNet   = "10.12.0.0/16"
	wgGoMTU   = 1500 - 80
	// wgGoPort is not felt's default 51820, so that nothing of a felt
	// wireguard agent can answer for it.
	wgGoPort = 51830
)

// wgSocketDir is where wireguard-go puts its UAPI socket, <name>.sock, and
// wg looks for it: one directory for every network namespace, hence a
// device name per lab and host (wgGoDev).
var wgSocketDir = "/var/run/wireguard"

func wgGoSubnet(i int) netip.Prefix {
	return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf(wgGoNetOf, i+1)), 24)
}

// wgGoDev is host i's device name in the lab named lab (at most 11
// characters, so at most 14 of IFNAMSIZ's 15).
func wgGoDev(lab string, i int) string { return lab + "wg" + strconv.Itoa(i) }

// wgKeyPair makes a private key with wg genkey and its public key with wg
// pubkey (run outside the lab: they touch no network).
func wgKeyPair(ctx context.Context) (priv, pub string, err error) {
	out, err := exec.CommandContext(ctx, "wg", "genkey").Output()
	if err != nil {
		return "", "", fmt.Errorf("wg genkey: %w", err)
	}
	priv = strings.TrimSpace(string(out))
	cmd := exec.CommandContext(ctx, "wg", "pubkey")
	cmd.Stdin = strings.NewReader(priv + "\n")
	if out, err = cmd.Output(); err != nil {
		return "", "", fmt.Errorf("wg pubkey: %w", err)
	}
	return priv, strings.TrimSpace(string(out)), nil
}

// wireguardGoUp starts wireguard-go in both hosts, configures the devices
// and peers and waits until the client reaches the server through them. It
// returns the server's overlay address and the wireguard-go processes
// (client first), whose CPU the measurement counts as the agents'. On
// failure it has taken down what it made.
func (l *underlayLab) wireguardGoUp(ctx context.Context) (_ netip.Addr, procs []*netns.Process, err error) {
	hosts := []*netns.Host{l.client, l.server}
	defer func() {
		if err != nil {
			for _, p := range procs {
				err = fmt.Errorf("%w\n--- wireguard-go in %s:\n%s", err, p.Host.Name, p.LogTail(40))
			}
			err = errors.Join(fmt.Errorf("wireguard-go could not start: %w", err), l.wireguardGoDown(context.WithoutCancel(ctx), procs))
			procs = nil
		}
	}()
	dir := filepath.Join(l.dir, string(WireGuardGo))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return netip.Addr{}, procs, err
	}
	keys := make([]string, len(hosts))
	pubs := make([]string, len(hosts))
	for i := range hosts {
		priv, pub, err := wgKeyPair(ctx)
		if err != nil {
			return netip.Addr{}, procs, err
		}
		keys[i], pubs[i] = filepath.Join(dir, fmt.Sprintf("h%d.key", i)), pub
		if err := os.WriteFile(keys[i], []byte(priv+"\n"), 0o600); err != nil {
			return netip.Addr{}, procs, err
		}
	}
	for i, h := range hosts {
		dev := wgGoDev(l.name, i)
		// A socket left by a wireguard-go that was killed would make wg
		// talk to nobody: start clean.
		removeWGSocket(dev)
		// In the foreground (as -f), without the banner -f prints about the
		// kernel module, which would crowd a failure's log tail.
		p, err := h.Start(ctx, "env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", dev)
		if err != nil {
			return netip.Addr{}, procs, err
		}
		procs = append(procs, p)
		if err := waitWGDevice(ctx, p, dev, 10*time.Second); err != nil {
			return netip.Addr{}, procs, err
		}
		set := []string{"wg", "set", dev, "private-key", keys[i], "listen-port", strconv.Itoa(wgGoPort)}
		for j, peer := range hosts {
			if j != i {
				set = append(set, "peer", pubs[j], "endpoint", netip.AddrPortFrom(peer.Addr, wgGoPort).String(),
					"allowed-ips", wgGoSubnet(j).String())
			}
		}
		for _, c := range [][]string{
			set,
			{"ip", "link", "set", dev, "mtu", strconv.Itoa(wgGoMTU)},
			{"ip", "addr", "add", netip.PrefixFrom(wgGoSubnet(i).Addr(), 32).String(), "dev", dev},
			{"ip", "link", "set", dev, "up"},
			{"ip", "route", "replace", wgGoNet, "dev", dev, "scope", "link"},
		} {
			if err := runIn(ctx, h, c[0], c[1:]...); err != nil {
				return netip.Addr{}, procs, err
			}
		}
	}
	dst := wgGoSubnet(1).Addr()
	if err := pingUntil(ctx, l.client, dst, 20*time.Second); err != nil {
		return netip.Addr{}, procs, err
	}
	return dst, procs, nil
}

// waitWGDevice waits until wg reaches the device dev of the wireguard-go p
// (its UAPI socket is up), or p exits.
func waitWGDevice(ctx context.Context, p *netns.Process, dev string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if err := p.Host.Command(ctx, "wg", "show", dev).Run(); err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("wireguard-go %s in %s exited: %s: %v", dev, p.Host.Name, lastLine(p.Log()), p.Wait())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wireguard-go %s in %s: no device for wg within %v", dev, p.Host.Name, within)
		}
	}
}

// wireguardGoDown stops the wireguard-go processes (which remove their
// device and socket as they exit), then removes any device or socket one of
// them left, as one killed would. Nothing left is no error.
func (l *underlayLab) wireguardGoDown(ctx context.Context, procs []*netns.Process) error {
	err := stopAll(procs)
	for i, h := range []*netns.Host{l.client, l.server} {
		dev := wgGoDev(l.name, i)
		err = errors.Join(err, delLink(ctx, h, dev), removeWGSocket(dev))
	}
	return err
}

// removeWGSocket removes dev's UAPI socket if it is there.
func removeWGSocket(dev string) error {
	err := os.Remove(filepath.Join(wgSocketDir, dev+".sock"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
