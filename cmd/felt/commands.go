package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
)

// command is one `felt <name>` command. Adding a command is one file with
// its run function plus one line in commands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"agent", "run the overlay agent on this host (flanneld's role)", runAgent},
	{"status", "show a running agent's subnet, peers and counters", runStatus},
	{"etcd", "run an embedded etcd member (for a lab or a small cluster)", runEtcd},
	{"config", "get or set the network config (flanneld's <prefix>/config)", runConfig},
	{"leases", "list the subnet leases", runLeases},
	{"bench", "measure felt against kernel VXLAN and bare veth (needs root)", runBench},
	{"demo", "build flannel's container lab on this machine and show containers talking across hosts", runDemo},
	{"docker-opts", "print Docker daemon options from subnet.env (flannel's mk-docker-opts.sh)", runDockerOpts},
	{"version", "print felt's version", runVersion},
}

// errUsage marks errors in how felt was called (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// run dispatches args to a command and turns its error into an exit status:
// 0 success or -h, 2 bad usage, 1 anything else.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		printUsage(e.stdout, "felt", commands)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	for _, c := range commands {
		if c.name == name {
			return exitStatus(e, c.run(ctx, e, args[1:]))
		}
	}
	fmt.Fprintf(e.stderr, "felt: unknown command %q\n", name)
	printUsage(e.stderr, "felt", commands)
	return 2
}

// exitStatus prints err, if any, and maps it to the exit status.
func exitStatus(e *env, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "felt: %v\n", err)
		return 2
	}
	fmt.Fprintf(e.stderr, "felt: %v\n", err)
	return 1
}

// dispatch runs one of a command's subcommands (e.g. `felt config set`).
func dispatch(ctx context.Context, e *env, parent string, subs []command, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout, parent, subs)
		if len(args) == 0 {
			return usageErr("%s needs a subcommand", parent)
		}
		return nil
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	printUsage(e.stderr, parent, subs)
	return usageErr("unknown subcommand %q", args[0])
}

func printUsage(w io.Writer, parent string, cmds []command) {
	fmt.Fprintf(w, "usage: %s <command> [flags] [args]\n\ncommands:\n", parent)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", parent)
}
