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

// feltUp starts `felt agent` in both hosts for scenario sc and waits until
// both have a lease and the client reaches the server through the overlay.
// It returns the server's overlay address and the agents (client first).
func (l *underlayLab) feltUp(ctx context.Context, c *Config, sc Scenario, rep int) (netip.Addr, []*netns.Process, error) {
	hosts := []*netns.Host{l.client, l.server}
	var procs []*netns.Process
	fail := func(err error) (netip.Addr, []*netns.Process, error) {
		for _, p := range procs {
			err = fmt.Errorf("%w\n--- agent in %s:\n%s", err, p.Host.Name, tail(p.Log(), 2000))
		}
		return netip.Addr{}, nil, errors.Join(err, stopAll(procs))
	}
	files := make([]string, len(hosts))
	for i, h := range hosts {
		dir := filepath.Join(l.dir, string(sc), h.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		files[i] = filepath.Join(dir, "subnet.env")
		os.Remove(files[i]) // its reappearance says the agent is ready
		args := []string{"agent", "--etcd-endpoints", l.etcd, "--etcd-prefix", feltNets[sc].prefix,
			"--iface", h.Iface, "--subnet-file", files[i],
			"--healthz-ip", "127.0.0.1", "--healthz-port", strconv.Itoa(agentHealthPort)}
		if c.ProfileDir != "" {
			prof := filepath.Join(c.ProfileDir, fmt.Sprintf("%s-%s-%d-h%d.pprof", l.u, sc, rep+1, i))
			args = append(args, "--cpuprofile", prof)
		}
		p, err := h.Start(ctx, c.FeltBin, args...)
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
	}
	var dst netip.Addr
	for i, p := range procs {
		sub, err := waitSubnet(ctx, p, files[i], 20*time.Second)
		if err != nil {
			return fail(err)
		}
		if i == 1 {
			dst = sub.Masked().Addr() // the TUN's address: <subnet>.0, as flanneld
		}
	}
	if err := pingUntil(ctx, l.client, dst, 20); err != nil {
		return fail(err)
	}
	return dst, procs, nil
}

// waitSubnet waits for the agent p to write its subnet file and returns
// FLANNEL_SUBNET from it.
func waitSubnet(ctx context.Context, p *netns.Process, file string, within time.Duration) (netip.Prefix, error) {
	deadline := time.Now().Add(within)
	for {
		if sub, err := readSubnet(file); err == nil {
			return sub, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return netip.Prefix{}, err
		}
		select {
		case <-p.Done():
			return netip.Prefix{}, fmt.Errorf("agent in %s exited before writing %s: %v", p.Host.Name, file, p.Wait())
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return netip.Prefix{}, fmt.Errorf("agent in %s wrote no %s within %v", p.Host.Name, file, within)
		}
	}
}

// readSubnet reads FLANNEL_SUBNET from a subnet.env. A file without it yet
// (being written) reads as not existing.
func readSubnet(file string) (netip.Prefix, error) {
	f, err := os.Open(file)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "FLANNEL_SUBNET="); ok {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("%s: FLANNEL_SUBNET %q: %w", file, v, err)
			}
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%s: no FLANNEL_SUBNET yet: %w", file, os.ErrNotExist)
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

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
