package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/feltnet/felt/lease"
)

// cmdConfigSet is `felt config set`: it validates a network config and
// stores it verbatim at <prefix>/config. The JSON is the one argument, or
// stdin for "-". An invalid config is refused before etcd is contacted.
func cmdConfigSet(fs *flag.FlagSet) action {
	ef := addEtcdFlags(fs)
	return func(ctx context.Context, e *env, _ []string) error {
		if fs.NArg() != 1 {
			fs.Usage()
			return usageErr("want one argument, the config JSON (or - to read it from stdin), got %d", fs.NArg())
		}
		data := []byte(fs.Arg(0))
		if fs.Arg(0) == "-" {
			var err error
			if data, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20)); err != nil {
				return fmt.Errorf("read config from stdin: %w", err)
			}
		}
		cfg, err := lease.ParseConfig(data)
		if err != nil {
			return err
		}
		store, cli, err := openStore(ctx, e, ef)
		if err != nil {
			return err
		}
		defer cli.Close()
		if err := store.PutConfig(ctx, data); err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "stored %s: Network %s, /%d subnets %s-%s, backend %s (UDP port %d)\n",
			store.ConfigKey(), cfg.Network, cfg.SubnetLen, cfg.SubnetMin, cfg.SubnetMax, cfg.Backend.Type, cfg.Backend.UDPPort())
		return err

	}
}
