package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
)

// command is one `felt <name>` command, or a subcommand. A leaf command
// declares its flags in flags, which returns the action to run once they are
// parsed; a command with subs runs the one its first argument names. Adding
// a command is one file with its flags function plus one entry here.
type command struct {
	name    string
	summary string
	usage   string // what follows "[flags]" in the usage line
	// takesArgs: positional arguments are the action's to check (status and
	// version ignore them); otherwise any is a usage error.
	takesArgs bool
	flags     func(fs *flag.FlagSet) action
	subs      []command // with flags too: run when the first argument names one
}

// action runs a command after its flags are parsed. args are the command's
// arguments as given, flags included (for a command that re-executes
// itself); its positional arguments are its FlagSet's Args.
type action func(ctx context.Context, e *env, args []string) error

var commands = []command{
	{name: "agent", summary: "run the overlay agent on this host (flanneld's role)", flags: cmdAgent},
	{name: "status", summary: "show a running agent's subnet, peers and counters", flags: cmdStatus, takesArgs: true},
	{name: "etcd", summary: "run an embedded etcd member (for a lab or a small cluster)", flags: cmdEtcd},
	{name: "config", summary: "get or set the network config (flanneld's <prefix>/config)", subs: []command{
		{name: "get", summary: "print the network config as stored (--effective: with defaults)", flags: cmdConfigGet},
		{name: "set", summary: "validate a network config and store it", usage: " '<json>' | -", flags: cmdConfigSet, takesArgs: true},
	}},
	{name: "leases", summary: "list the subnet leases", flags: cmdLeases},
	{name: "bench", summary: "measure felt against kernel VXLAN and bare veth (needs root)", flags: cmdBench},
	{name: "demo", summary: "build flannel's container lab on this machine and show containers talking across hosts",
		usage: " | felt demo shell HOST[/CONTAINER] [CMD...] | felt demo down", flags: cmdDemo, takesArgs: true,
		subs: []command{
			{name: "shell", summary: "run a shell or command in a running demo's host or container",
				usage: " HOST[/CONTAINER] [CMD [ARGS...]]", flags: cmdDemoShell, takesArgs: true},
			{name: "down", summary: "stop a kept demo and remove what a crashed one left", flags: cmdDemoDown},
		}},
	{name: "docker-opts", summary: "print Docker daemon options from subnet.env (flannel's mk-docker-opts.sh)", flags: cmdDockerOpts},
	{name: "version", summary: "print felt's version", flags: cmdVersion, takesArgs: true},
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
	if c, ok := find(commands, args[0]); ok {
		return exitStatus(e, c.exec(ctx, e, "felt", args[1:]))
	}
	fmt.Fprintf(e.stderr, "felt: unknown command %q\n", args[0])
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

// exec runs c as `<parent> <c.name>`: a subcommand if the first argument
// names one, else c's own action with its flags parsed from args and the
// FELT_/FLANNELD_ environment (parseFlags).
func (c command) exec(ctx context.Context, e *env, parent string, args []string) error {
	path := parent + " " + c.name
	if c.flags == nil {
		return dispatch(ctx, e, path, c.subs, args)
	}
	if len(args) > 0 {
		if sub, ok := find(c.subs, args[0]); ok {
			return sub.exec(ctx, e, path, args[1:])
		}
	}
	fs := newFlagSet(path, c.usage, e.stderr)
	act := c.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !c.takesArgs && fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	return act(ctx, e, args)
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
	if c, ok := find(subs, args[0]); ok {
		return c.exec(ctx, e, parent, args[1:])
	}
	printUsage(e.stderr, parent, subs)
	return usageErr("unknown subcommand %q", args[0])
}

func find(cmds []command, name string) (command, bool) {
	for _, c := range cmds {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
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
