package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"

	"github.com/feltnet/felt/lease"
)

// cmdDockerOpts, `felt docker-opts`, is flannel's dist/mk-docker-opts.sh:
// Docker daemon options from subnet.env. It prints them (or writes them to -d FILE) in the
// script's format: DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ, DOCKER_OPT_MTU, then
// the combined DOCKER_OPTS (or -k KEY), each as NAME="value".
func cmdDockerOpts(flags *flag.FlagSet) action {
	subnetFile := flags.String("subnet-file", lease.DefaultSubnetFile, "the agent's subnet.env")
	flags.StringVar(subnetFile, "f", lease.DefaultSubnetFile, "same as --subnet-file (mk-docker-opts.sh's -f)")
	out := flags.String("d", "", "write the options to this file (mk-docker-opts.sh writes /run/docker_opts.env) instead of printing them")
	key := flags.String("k", "DOCKER_OPTS", "name of the combined variable; its value in the environment is kept in front")
	indiv := flags.Bool("i", false, "only the individual DOCKER_OPT_* variables")
	combined := flags.Bool("c", false, "only the combined variable")
	noMasq := flags.Bool("m", false, "leave out --ip-masq (for old Docker versions)")
	return func(ctx context.Context, e *env, _ []string) error {
		if !validEnvName(*key) {
			return usageErr("-k %q: must be a shell variable name (letters, digits, _; not starting with a digit)", *key)
		}
		data, err := os.ReadFile(*subnetFile)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--subnet-file %s: no such file (felt agent or flanneld writes it once it holds a lease)", *subnetFile)
		}
		if err != nil {
			return err
		}
		env, err := lease.ParseSubnetEnv(data)
		if err != nil {
			return fmt.Errorf("%s: %w", *subnetFile, err)
		}
		if !*indiv && !*combined {
			*indiv, *combined = true, true
		}
		o := dockerOptsInput{env: env, hasIPMasq: bytes.Contains(data, []byte("FLANNEL_IPMASQ=")), masq: !*noMasq,
			key: *key, prior: os.Getenv(*key), indiv: *indiv, combined: *combined}
		text := formatDockerOpts(o)
		if *out == "" {
			_, err := e.stdout.Write(text)
			return err
		}
		if err := os.WriteFile(*out, text, 0o644); err != nil {
			return fmt.Errorf("-d %s: %w", *out, err)
		}
		return nil

	}
}

type dockerOptsInput struct {
	env             lease.SubnetEnv
	hasIPMasq, masq bool   // FLANNEL_IPMASQ given; -m not given
	key, prior      string // combined variable and its value in the environment
	indiv, combined bool
}

// formatDockerOpts writes what mk-docker-opts.sh writes: the individual
// options in the order the shell's `set` lists them, then the combined
// variable, which is the prior value plus a space (if any), then " value"
// for each option: the script's exact spacing.
func formatDockerOpts(o dockerOptsInput) []byte {
	type opt struct{ name, value string }
	var opts []opt
	if o.env.Subnet.IsValid() {
		// FLANNEL_SUBNET is the subnet's first address, as flanneld writes it.
		bip := netip.PrefixFrom(o.env.Subnet.Addr().Next(), o.env.Subnet.Bits())
		opts = append(opts, opt{"DOCKER_OPT_BIP", "--bip=" + bip.String()})
	}
	if o.hasIPMasq && o.masq {
		// flanneld masquerades: Docker must not do it twice, and vice versa.
		opts = append(opts, opt{"DOCKER_OPT_IPMASQ", fmt.Sprintf("--ip-masq=%t", !o.env.IPMasq)})
	}
	if o.env.MTU != 0 {
		opts = append(opts, opt{"DOCKER_OPT_MTU", fmt.Sprintf("--mtu=%d", o.env.MTU)})
	}
	var b []byte
	all := o.prior
	if all != "" {
		all += " "
	}
	for _, op := range opts {
		if o.indiv {
			b = fmt.Appendf(b, "%s=\"%s\"\n", op.name, op.value)
		}
		all += " " + op.value
	}
	if o.combined {
		b = fmt.Appendf(b, "%s=\"%s\"\n", o.key, all)
	}
	return b
}

func validEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}
