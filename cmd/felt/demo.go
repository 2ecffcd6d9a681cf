package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/feltnet/felt/demo"
	"github.com/feltnet/felt/netns"
)

// cmdDemo is `felt demo`: build, check, report, remove (its subcommands
// shell and down are cmdDemoShell and cmdDemoDown). Unprivileged, it re-runs
// itself in a user namespace (netns.ReexecRootless).
func cmdDemo(fs *flag.FlagSet) action {
	hosts := fs.Int("hosts", demo.DefaultHosts, "number of hosts, each with an agent, a docker0 bridge and two containers")
	backend := fs.String("backend", demo.DefaultBackend, "flannel backend: udp, vxlan, wireguard or host-gw")
	direct := fs.Bool("direct-routing", false, "vxlan only: set DirectRouting, so peers on the hosts' shared L2 get kernel routes instead of the TUN")
	keep := fs.Bool("keep", false, "keep the lab up after the checks, until Ctrl-C or `felt demo down`")
	ipMasq := fs.Bool("ip-masq", false, "run the agents with --ip-masq and check that containers reach outside the overlay masqueraded")
	name := fs.String("name", demo.DefaultName, "lab name: prefix of its namespaces and links")
	underlay := fs.String("underlay", demo.DefaultUnderlay.String(), "the hosts' network (the lab bridge gets its first address)")
	network := fs.String("network", demo.DefaultNetwork.String(), "the overlay network (flannel's Network)")
	ipv6 := fs.Bool("ipv6", false, "dual-stack lab (udp, vxlan): EnableIPv6, an IPv6 underlay address per host, containers with both families, pings and a TCP transfer over each")
	underlay6 := fs.String("underlay6", demo.DefaultUnderlay6.String(), "with --ipv6: the hosts' IPv6 network (host i gets address i+1)")
	network6 := fs.String("ipv6-network", demo.DefaultIPv6Network.String(), "with --ipv6: the IPv6 overlay network (flannel's IPv6Network)")
	transfer := fs.Int64("transfer-mib", demo.DefaultTransfer>>20, "MiB sent over the checked TCP connection")
	stateDir := fs.String("state-dir", defaultDemoStateDir(), "where a running demo records itself for shell and down")
	return func(ctx context.Context, e *env, args []string) error {
		if fs.NArg() > 0 {
			return usageErr("unexpected arguments %q (subcommands: shell, down)", fs.Args())
		}
		cfg := demo.Config{Hosts: *hosts, Backend: *backend, DirectRouting: *direct, Keep: *keep, IPMasq: *ipMasq, Name: *name, IPv6: *ipv6,
			Transfer: *transfer << 20, StateDir: *stateDir, Out: e.stdout, Now: e.now,
			Log: e.log.WithOptions(zap.IncreaseLevel(zapcore.ErrorLevel))}
		var err error
		if cfg.Underlay, err = netip.ParsePrefix(*underlay); err != nil {
			return usageErr("--underlay %q: not a CIDR prefix such as 10.252.0.0/24", *underlay)
		}
		if cfg.Network, err = netip.ParsePrefix(*network); err != nil {
			return usageErr("--network %q: not a CIDR prefix such as 10.5.0.0/16", *network)
		}
		if cfg.Underlay6, err = netip.ParsePrefix(*underlay6); err != nil {
			return usageErr("--underlay6 %q: not a CIDR prefix such as %s", *underlay6, demo.DefaultUnderlay6)
		}
		if cfg.IPv6Network, err = netip.ParsePrefix(*network6); err != nil {
			return usageErr("--ipv6-network %q: not a CIDR prefix such as %s", *network6, demo.DefaultIPv6Network)
		}
		if *transfer <= 0 || *transfer > 4096 {
			return usageErr("--transfer-mib %d: must be between 1 and 4096", *transfer)
		}
		if err := cfg.Validate(); err != nil {
			return usageErr("%v", err)
		}
		// Whatever happens to the terminal, the lab must be removed: a closed
		// pipe (felt demo | head) is not fatal, a hang-up is like Ctrl-C.
		signal.Ignore(syscall.SIGPIPE)
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
		defer stop()
		if netns.Rootless() && !netns.InRootless() {
			fmt.Fprintf(e.stdout, "felt demo: not root (uid %d): running the lab in a user namespace (rootless mode)\n", os.Getuid())
			// The child must find the state where `down` and `shell` outside look.
			return reexecRootless(ctx, append([]string{"demo", "--state-dir", *stateDir}, args...))
		}
		_, err = demo.Run(ctx, cfg)
		return err

	}
}

// defaultDemoStateDir is /run/felt-demo for root; for a rootless demo a
// directory of the user's that the user namespace also sees (not /run,
// which it replaces).
func defaultDemoStateDir() string {
	if !netns.Rootless() {
		return "/run/felt-demo"
	}
	return filepath.Join(os.TempDir(), "felt-demo-"+strconv.Itoa(os.Getuid()))
}

// reexecRootless runs the demo in a user namespace. On Ctrl-C or SIGTERM
// the child is asked to tear down (SIGTERM) and given time to; only if it
// hangs does the context kill it.
func reexecRootless(ctx context.Context, args []string) error {
	child, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		signalChildren(syscall.SIGTERM)
		time.AfterFunc(30*time.Second, cancel)
	})
	defer stop()
	if err := netns.ReexecRootless(child, args); err != nil {
		return fmt.Errorf("the rootless demo failed (see above): %w", err)
	}
	return nil
}

// signalChildren sends sig to this process's children (the rootless demo).
func signalChildren(sig syscall.Signal) {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, sig)
			}
		}
	}
}

// cmdDemoShell is `felt demo shell`: it runs a shell (or CMD) in a running
// demo's host or container.
func cmdDemoShell(fs *flag.FlagSet) action {
	name := fs.String("name", demo.DefaultName, "the demo's --name")
	stateDir := fs.String("state-dir", defaultDemoStateDir(), "the demo's --state-dir")
	return func(ctx context.Context, e *env, _ []string) error {
		if fs.NArg() < 1 {
			fs.Usage()
			return usageErr("want a host or container, e.g. h0 or h0/c1")
		}
		s, err := demo.ReadState(*stateDir, *name)
		if err != nil {
			return err
		}
		ns, err := s.Namespace(fs.Arg(0))
		if err != nil {
			return err
		}
		command := fs.Args()[1:]
		if len(command) == 0 {
			sh := os.Getenv("SHELL")
			if sh == "" {
				sh = "/bin/sh"
			}
			command = []string{sh}
			fmt.Fprintf(e.stderr, "felt demo: a shell in %s (namespace %s); exit to leave\n", fs.Arg(0), ns)
		}
		argv := append([]string{"ip", "netns", "exec", ns}, command...)
		if s.Rootless {
			// The lab lives in the demo's user and mount namespaces.
			// --preserve-credentials: the namespace denies setgroups.
			argv = append([]string{"nsenter", "-t", strconv.Itoa(s.PID), "-U", "-m", "--preserve-credentials", "--"}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return nil

	}
}

// cmdDemoDown is `felt demo down`: it stops a kept demo and removes
// anything a crashed one left.
func cmdDemoDown(fs *flag.FlagSet) action {
	name := fs.String("name", demo.DefaultName, "the demo's --name")
	stateDir := fs.String("state-dir", defaultDemoStateDir(), "the demo's --state-dir")
	return func(_ context.Context, e *env, _ []string) error {
		return demo.Down(*stateDir, *name, e.stdout)
	}
}
