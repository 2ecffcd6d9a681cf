package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/netns"
)

// agentsUp starts one agent per host for scenario sc (`felt agent` for the
// felt scenarios, Config.Flanneld with flanneld's flags for the flanneld
// ones) and waits until both have a lease and the client reaches the
// server through the overlay. It returns the server's overlay address and
// the agents (client first). An agent that cannot start (a backend it does
// not implement) fails here, with its log's tail.
func (l *underlayLab) agentsUp(ctx context.Context, c *Config, sc Scenario, rep int) (netip.Addr, []*netns.Process, error) {
	hosts := []*netns.Host{l.client, l.server}
	var procs []*netns.Process
	what := "felt agent"
	if sc.flanneld() {
		what = "flanneld (" + c.Flanneld + ")"
	}
	fail := func(err error) (netip.Addr, []*netns.Process, error) {
		for _, p := range procs {
			err = fmt.Errorf("%w\n--- %s in %s:\n%s", err, what, p.Host.Name, p.LogTail(40))
		}
		return netip.Addr{}, nil, errors.Join(err, l.agentsDown(context.WithoutCancel(ctx), sc, procs))
	}
	files := make([]string, len(hosts))
	net := agentNets[sc.Base()]
	for i, h := range hosts {
		dir := filepath.Join(l.dir, fileName(sc), h.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		files[i] = filepath.Join(dir, "subnet.env")
		os.Remove(files[i]) // its reappearance says the agent is ready
		// Flags flanneld and felt agent share (felt takes flanneld's names),
		// then the scenario's own.
		args := append([]string{"--etcd-endpoints", l.etcd, "--etcd-prefix", net.prefix,
			"--iface", h.Iface, "--subnet-file", files[i],
			"--healthz-ip", "127.0.0.1", "--healthz-port", strconv.Itoa(agentHealthPort)}, strings.Fields(net.flags)...)
		// Each host its own wireguard key, whatever the caller's environment
		// says (both read WIREGUARD_KEY_FILE).
		env := []string{"WIREGUARD_KEY_FILE=" + filepath.Join(dir, wireguardKeyFile)}
		name := c.Flanneld
		if sc.felt() {
			fenv, extra := splitFeltFlags(sc.FeltFlags())
			env = append(env, fenv...)
			name = c.FeltBin
			args = append(append([]string{"agent"}, args...), extra...)
			if c.ProfileDir != "" {
				prof := filepath.Join(c.ProfileDir, fmt.Sprintf("%s-%s-%d-h%d.pprof", l.u, fileName(sc), rep+1, i))
				args = append(args, "--cpuprofile", prof)
			}
		}
		// env(1) execs the agent: the pid stays the agent's.
		args = append(append(env, name), args...)
		name = "env"
		p, err := h.Start(ctx, name, args...)
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
	}
	var dst netip.Addr
	for i, p := range procs {
		sub, err := waitSubnet(ctx, p, files[i], 20*time.Second)
		if err != nil {
			select {
			case <-p.Done(): // its last words say why, on the report's first line
				return fail(fmt.Errorf("%s could not start: %s exited: %s: %w", sc, what, lastLine(p.Log()), err))
			default:
				return fail(fmt.Errorf("%s could not start: %w", sc, err))
			}
		}
		dst = sub.Masked().Addr() // the device's address: <subnet>.0, as flanneld
		if net.ipv6 {
			// Measured over IPv6: felt0's <IPv6 subnet>:: address. The
			// file is written whole, so FLANNEL_SUBNET's presence means
			// FLANNEL_IPV6_SUBNET is there too if it will ever be.
			sub6, err := readEnvPrefix(files[i], "FLANNEL_IPV6_SUBNET")
			if err != nil {
				return fail(fmt.Errorf("%s could not start: %w", sc, err))
			}
			dst = sub6.Masked().Addr()
		}
		if net.backend == "host-gw" {
			// host-gw has no device of its own: give each host a pod address,
			// as a CNI bridge would, so the server has one to be reached at.
			// A veth pair, not a dummy: kernels without the dummy module have
			// veth (the lab is made of it).
			pod := netip.PrefixFrom(dst.Next(), sub.Bits())
			for _, args := range [][]string{{"link", "add", podDev, "type", "veth", "peer", "name", podDev + "p"},
				{"addr", "add", pod.String(), "dev", podDev}, {"link", "set", podDev + "p", "up"}, {"link", "set", podDev, "up"}} {
				if err := runIn(ctx, hosts[i], "ip", args...); err != nil {
					return fail(err)
				}
			}
			dst = pod.Addr()
		}
	}
	if err := pingUntil(ctx, l.client, dst, 20*time.Second); err != nil {
		return fail(fmt.Errorf("%s could not start: %w", sc, err))
	}
	return dst, procs, nil
}

// fileName is sc as a file name: a felt variant's flags may hold slashes
// and spaces.
func fileName(sc Scenario) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '=' {
			return r
		}
		return '_'
	}, string(sc))
}

// podDev is the device (one end of a veth pair; deleting it deletes both)
// holding a host's pod address in host-gw.
const podDev = "fbpods"

// wireguardKeyFile is the agents' private key file in each host's directory
// (flanneld's name, beside the subnet file).
const wireguardKeyFile = "wgkey"

// agentsDown stops the agents with SIGTERM (so profiles are flushed) and
// removes what flanneld leaves behind when it exits: its flannel.1 (which
// would hold port 8472 against the next vxlan scenario), host-gw's routes
// and the pod devices bench added (the latter two for felt's host-gw too).
func (l *underlayLab) agentsDown(ctx context.Context, sc Scenario, procs []*netns.Process) error {
	err := stopAll(procs)
	if !sc.flanneld() && agentNets[sc.Base()].backend != "host-gw" {
		return err
	}
	for _, h := range []*netns.Host{l.client, l.server} {
		for _, dev := range []string{vxlanDev, podDev} {
			err = errors.Join(err, delLink(ctx, h, dev))
		}
		if e := runIn(ctx, h, "ip", "route", "flush", "root", agentNets[sc.Base()].network.String()); e != nil {
			err = errors.Join(err, e)
		}
	}
	return err
}

// waitSubnet waits for the agent p to write its subnet file and returns
// FLANNEL_SUBNET from it.
func waitSubnet(ctx context.Context, p *netns.Process, file string, within time.Duration) (netip.Prefix, error) {
	if err := p.WaitFile(ctx, file, within); err != nil {
		return netip.Prefix{}, err
	}
	return readSubnet(file)
}

// readSubnet reads FLANNEL_SUBNET from a subnet.env. A file without it yet
// (being written) reads as not existing.
func readSubnet(file string) (netip.Prefix, error) { return readEnvPrefix(file, "FLANNEL_SUBNET") }

// readEnvPrefix reads the prefix variable key from a subnet.env. A file
// without it reads as not existing.
func readEnvPrefix(file, key string) (netip.Prefix, error) {
	f, err := os.Open(file)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+"="); ok {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("%s: %s %q: %w", file, key, v, err)
			}
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%s: no %s yet: %w", file, key, os.ErrNotExist)
}

// stopAll stops processes with SIGTERM (so profiles are flushed).
func stopAll(procs []*netns.Process) error {
	var errs []error
	for _, p := range procs {
		if err := p.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("agent in %s: %w", p.Host.Name, err))
		}
	}
	return errors.Join(errs...)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
