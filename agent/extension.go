package agent

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
)

// extension runs the extension backend's commands as flanneld does (its
// pkg/backend/extension): each command line is split on white space, $VAR
// and ${VAR} in it are expanded from the environment the command gets, and
// it runs without a shell, with the agent's environment plus:
//
//	PreStartupCommand   (none)                                              stdin "\n"
//	PostStartupCommand  NETWORK SUBNET IPV6SUBNET PUBLIC_IP PUBLIC_IPV6       stdin "\n"
//	SubnetAddCommand    SUBNET PUBLIC_IP (the peer's)                         stdin <peer's BackendData string> "\n"
//	SubnetRemoveCommand SUBNET PUBLIC_IP (the peer's)                         stdin <peer's BackendData string> "\n"
//
// The pre-startup command's combined output, trimmed, is published as the
// lease's BackendData (a JSON string). A failing pre- or post-startup
// command stops the agent; a failing subnet command is logged.
type extension struct {
	cmds    lease.ExtensionCommands
	network netip.Prefix
	log     *zap.Logger
}

func newExtension(c lease.ExtensionCommands, network netip.Prefix, log *zap.Logger) *extension {
	return &extension{cmds: c, network: network, log: log}
}

// preStartup runs PreStartupCommand; ran is false when there is none.
func (e *extension) preStartup() (out string, ran bool, err error) {
	if e.cmds.PreStartupCommand == "" {
		e.log.Info("no PreStartupCommand configured")
		return "", false, nil
	}
	out, err = runExtCommand(e.cmds.PreStartupCommand, nil, "")
	if err != nil {
		return "", false, fmt.Errorf("extension backend: Backend.PreStartupCommand %q: %w (output: %s)", e.cmds.PreStartupCommand, err, out)
	}
	e.log.Info("ran PreStartupCommand", zap.String("command", e.cmds.PreStartupCommand), zap.String("output", out))
	return out, true, nil
}

// postStartup runs PostStartupCommand for the own lease l. felt leases no
// IPv6 subnet: IPV6SUBNET and PUBLIC_IPV6 read as flanneld prints an absent
// one ("::/0" and "<nil>").
func (e *extension) postStartup(l lease.Lease, public netip.Addr) error {
	if e.cmds.PostStartupCommand == "" {
		e.log.Info("no PostStartupCommand configured")
		return nil
	}
	v6sn, v6pub := "::/0", "<nil>"
	if l.IPv6Subnet.IsValid() {
		v6sn = l.IPv6Subnet.String()
	}
	if l.Attrs.PublicIPv6.IsValid() {
		v6pub = l.Attrs.PublicIPv6.String()
	}
	env := []string{"NETWORK=" + e.network.String(), "SUBNET=" + l.Subnet.String(), "IPV6SUBNET=" + v6sn,
		"PUBLIC_IP=" + public.String(), "PUBLIC_IPV6=" + v6pub}
	out, err := runExtCommand(e.cmds.PostStartupCommand, env, "")
	if err != nil {
		return fmt.Errorf("extension backend: Backend.PostStartupCommand %q: %w (output: %s)", e.cmds.PostStartupCommand, err, out)
	}
	e.log.Info("ran PostStartupCommand", zap.String("command", e.cmds.PostStartupCommand), zap.String("output", out))
	return nil
}

// apply runs SubnetAddCommand or SubnetRemoveCommand for each event of an
// extension lease that peers took (or would have taken) as a peer; leases
// of other backend types are skipped, as flanneld skips them (peerSet
// logs them). It runs on the watch goroutine, one command at a time.
func (e *extension) apply(evs []lease.Event, accept func(lease.Lease) bool) {
	for _, ev := range evs {
		a := ev.Lease.Attrs
		if a.BackendType != lease.BackendExtension || !accept(ev.Lease) {
			continue
		}
		field, cmd := "SubnetAddCommand", e.cmds.SubnetAddCommand
		if ev.Type == lease.Removed {
			field, cmd = "SubnetRemoveCommand", e.cmds.SubnetRemoveCommand
		}
		if cmd == "" {
			continue
		}
		data, err := a.ExtensionData()
		if err != nil {
			e.log.Error("lease skipped", zap.Stringer("subnet", ev.Lease.Subnet), zap.Error(err))
			continue
		}
		env := []string{"SUBNET=" + ev.Lease.Subnet.String(), "PUBLIC_IP=" + a.PublicIP.String()}
		out, err := runExtCommand(cmd, env, data)
		if err != nil {
			e.log.Error(field+" failed", zap.String("command", cmd), zap.Stringer("subnet", ev.Lease.Subnet),
				zap.Error(err), zap.String("output", out))
			continue
		}
		e.log.Info("ran "+field, zap.String("command", cmd), zap.Stringer("subnet", ev.Lease.Subnet), zap.String("output", out))
	}
}

// runExtCommand runs line as flanneld's runCmd: fields split on white
// space, $VAR expanded from the agent's environment overlaid with env, the
// process gets that environment and stdin+"\n"; it returns the combined
// stdout and stderr, trimmed.
func runExtCommand(line string, env []string, stdin string) (string, error) {
	vars := map[string]string{}
	for _, kv := range append(os.Environ(), env...) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	args := strings.Fields(line)
	if len(args) == 0 {
		return "", fmt.Errorf("empty command")
	}
	for i, a := range args {
		args[i] = os.Expand(a, func(k string) string { return vars[k] })
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
