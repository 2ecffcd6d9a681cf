package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/agent"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// unknownEnv lists the FLANNELD_* and FELT_* variables in environ that name
// no flag of fs: a unit file written for flanneld may set some felt lacks
// (FLANNELD_IFACE_REGEX, say), and silently ignoring one could pick another
// interface than the operator meant.
func unknownEnv(fs *flag.FlagSet, environ []string) []string {
	// The packet path's settings are variables without a flag.
	known := map[string]bool{tun.ModerateEnv: true, router.LingerEnv: true}
	fs.VisitAll(func(f *flag.Flag) {
		known[envName(envPrefixFelt, f.Name)] = true
		known[envName(envPrefixFlanneld, f.Name)] = true
	})
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, envPrefixFlanneld) || strings.HasPrefix(name, envPrefixFelt)) && !known[name] {
			out = append(out, name)
		}
	}
	return out
}

// listFlag is a repeatable string flag (flanneld's --iface); a comma list
// in one value (as from FLANNELD_IFACE) counts as several.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// runAgent is agent.Run; tests replace it to see the Config the flags make.
var runAgent = agent.Run

func cmdAgent(fs *flag.FlagSet) action {
	ef := addEtcdFlags(fs)
	df := addDropinFlags(fs)
	var ifaces listFlag
	fs.Var(&ifaces, "iface", "interface (name or IPv4 address) that reaches the other hosts; repeatable, first match wins (default: the default route's)")
	publicIP := fs.String("public-ip", "", "IPv4 address other hosts reach this one at (default: the interface's address)")
	publicIPv6 := fs.String("public-ipv6", "", "IPv6 address other hosts reach this one at, with EnableIPv6 (default: the interface's)")
	subnetFile := fs.String("subnet-file", lease.DefaultSubnetFile, "file the subnet lease is written to, in flanneld's format")
	margin := fs.Int("subnet-lease-renew-margin", 60, "renew the lease this many minutes before it expires (1..1439)")
	ipMasq := fs.Bool("ip-masq", false, "masquerade traffic leaving the overlay (flanneld's FLANNEL-POSTRTG rules)")
	fwdRules := fs.Bool("iptables-forward-rules", true, "accept forwarded traffic from and to the Network (flanneld's FLANNEL-FWD rules)")
	healthIP := fs.String("healthz-ip", "0.0.0.0", "address of /healthz, /readyz, /metrics and /status")
	healthPort := fs.Int("healthz-port", 0, "port of /healthz, /readyz, /metrics and /status (0: off)")
	tunName := fs.String("tun-name", agent.DefaultTUNName, "name of the TUN device")
	queues := fs.Int("queues", agent.DefaultQueues, "TUN queues and UDP sockets, each with its own pair of forwarding loops (1..256); more only help with more cores and several peers (docs/performance.md)")
	vtepFile := fs.String("vtep-mac-file", "", "file that keeps the VtepMAC across restarts (default: felt-vtep-mac beside --subnet-file)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile (go tool pprof) to this file until the agent stops")
	return func(ctx context.Context, e *env, _ []string) error {
		if df.version {
			return printVersion(e)
		}
		if err := df.check(fs, e); err != nil {
			return err
		}
		for _, name := range unknownEnv(fs, os.Environ()) {
			e.log.Warn("environment variable ignored: felt agent has no such flag (a flanneld setting felt does not support?)",
				zap.String("variable", name))
		}
		o, err := ef.options()
		if err != nil {
			return err
		}
		cfg := agent.Config{
			Etcd: o, Ifaces: ifaces, SubnetFile: *subnetFile,
			RenewMargin: time.Duration(*margin) * time.Minute, IPMasq: *ipMasq, ForwardRules: *fwdRules,
			HealthzIP: *healthIP, HealthzPort: *healthPort, TUNName: *tunName, VtepMACFile: *vtepFile, Queues: *queues,
			IfaceRegex: df.ifaceRegex, IfaceCanReach: df.canReach, Resync: time.Duration(df.resync) * time.Second,
			NoRandomFully: df.noRandomFully, BlackholeRoute: df.blackhole,
		}
		if *publicIP != "" {
			ip, err := netip.ParseAddr(*publicIP)
			if err != nil {
				return usageErr("--public-ip %q: not an IP address", *publicIP)
			}
			cfg.PublicIP = ip
		}
		if *queues == 0 {
			return usageErr("--queues 0: must be between 1 and %d", tun.MaxQueues)
		}
		if *publicIPv6 != "" {
			ip, err := netip.ParseAddr(*publicIPv6)
			if err != nil {
				return usageErr("--public-ipv6 %q: not an IP address", *publicIPv6)
			}
			cfg.PublicIPv6 = ip
		}
		if err := cfg.Validate(); err != nil {
			return usageErr("%v", err)
		}
		if *cpuProfile != "" {
			stop, err := startCPUProfile(*cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		return runAgent(ctx, cfg, e.log)
	}
}

// startCPUProfile profiles the whole process into path; the returned func
// stops and flushes it (on SIGTERM too, since Run returns then).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile %q: %w", path, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %q: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
