package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"go.uber.org/zap/zapcore"
)

// felt as a drop-in for flanneld: installed or linked as `flanneld`, or
// given flags with no command, it runs the agent; every flag of flanneld's
// --help is accepted (Go's flag package takes -flag and --flag alike, as the
// unit files of existing installs use).

// agentArgs turns felt's command line into the one to dispatch: invoked as
// flanneld, or with a flag first (not -h/--help, which list the commands),
// the arguments are the agent's.
func agentArgs(argv0 string, args []string) []string {
	if strings.TrimSuffix(filepath.Base(argv0), ".exe") == "flanneld" {
		return append([]string{"agent"}, args...)
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		switch args[0] {
		case "-h", "--help", "-help":
		default:
			return append([]string{"agent"}, args...)
		}
	}
	return args
}

// dropinFlags are flanneld's flags that felt agent had not carried before.
type dropinFlags struct {
	ifaceRegex    rawListFlag
	canReach      string
	resync        int
	noRandomFully bool
	blackhole     bool
	version       bool
	v             int
	vmodule       string
	backtraceAt   string
	kubeFlags     []string // names of the Kubernetes subnet manager flags
}

// kubeFlag is one of flanneld's Kubernetes subnet-manager flags.
type kubeFlag struct{ name, def, usage string }

var kubeFlags = []kubeFlag{
	{"kube-subnet-mgr", "false", "flanneld: contact the Kubernetes API for subnet assignment (felt: not supported, it runs in etcd mode)"},
	{"kube-api-url", "", "flanneld: Kubernetes API server URL (felt: not supported, etcd mode only)"},
	{"kube-annotation-prefix", "flannel.alpha.coreos.com", "flanneld: Kubernetes annotation prefix (felt: not supported, etcd mode only)"},
	{"kubeconfig-file", "", "flanneld: kubeconfig file location (felt: not supported, etcd mode only)"},
	{"net-config-path", "/etc/kube-flannel/net-conf.json", "flanneld: network config file of Kubernetes mode (felt: not supported; the config is read from etcd at <etcd-prefix>/config)"},
	{"set-node-network-unavailable", "true", "flanneld: set NodeNetworkUnavailable after ready (felt: not supported, etcd mode only)"},
}

func addDropinFlags(fs *flag.FlagSet) *dropinFlags {
	d := &dropinFlags{}
	fs.Var(&d.ifaceRegex, "iface-regex", "regex matched against the interfaces' IPv4 addresses, then their names; repeatable; tried after --iface")
	fs.StringVar(&d.canReach, "iface-can-reach", "", "use the interface (and source address) the route to this IP takes (`ip route get IP`); tried after --iface-regex")
	fs.IntVar(&d.resync, "iptables-resync", 5, "check the firewall rules every this many seconds and rebuild them in order if one is missing")
	fs.BoolVar(&d.noRandomFully, "ip-masq-fully-random-disable", false, "masquerade without --random-fully (fully-random)")
	fs.BoolVar(&d.blackhole, "ip-blackhole-route", false, "add a blackhole route for the own subnet")
	fs.BoolVar(&d.version, "version", false, "print version and exit")
	fs.IntVar(&d.v, "v", 0, "log level: 0 info, 1 and above debug (flanneld's klog verbosity)")
	fs.StringVar(&d.vmodule, "vmodule", "", "flanneld's klog per-file verbosity (accepted, ignored: use -v)")
	fs.StringVar(&d.backtraceAt, "log_backtrace_at", "", "flanneld's klog backtrace location (accepted, ignored)")
	for _, k := range kubeFlags {
		if k.def == "true" || k.def == "false" {
			fs.Bool(k.name, k.def == "true", k.usage)
		} else {
			fs.String(k.name, k.def, k.usage)
		}
	}
	return d
}

// check refuses the Kubernetes subnet manager, validates the values with
// rules of their own, applies -v and warns about what felt ignores.
func (d *dropinFlags) check(fs *flag.FlagSet, e *env) error {
	var kube []string
	fs.Visit(func(f *flag.Flag) {
		for _, k := range kubeFlags {
			if f.Name == k.name && f.Value.String() != k.def {
				kube = append(kube, "--"+f.Name+"="+f.Value.String())
			}
		}
	})
	if len(kube) > 0 {
		return usageErr("%s: felt supports flanneld's etcd mode only, not the Kubernetes subnet manager; "+
			"drop these flags and give --etcd-endpoints and --etcd-prefix (the network config is read from <prefix>/config)",
			strings.Join(kube, " "))
	}
	if d.resync < 1 {
		return usageErr("--iptables-resync %d: must be at least 1 (seconds)", d.resync)
	}
	if d.v < 0 {
		return usageErr("-v %d: must be 0 or more", d.v)
	}
	if e.level != nil {
		if d.v >= 1 {
			e.level.SetLevel(zapcore.DebugLevel)
		} else {
			e.level.SetLevel(zapcore.InfoLevel)
		}
	}
	if d.vmodule != "" || d.backtraceAt != "" {
		e.log.Warn("--vmodule and --log_backtrace_at are accepted for flanneld's unit files and ignored; use -v N")
	}
	return nil
}

// rawListFlag is a repeatable flag whose values are kept whole (a regex
// may hold a comma).
type rawListFlag []string

func (l *rawListFlag) String() string { return fmt.Sprint([]string(*l)) }
func (l *rawListFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
