package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/feltnet/felt/lease"
)

// cmdConfigGet is `felt config get`: it prints <prefix>/config as stored,
// and fails (after printing it) if felt could not use it; --effective prints
// it as felt reads it.
func cmdConfigGet(fs *flag.FlagSet) action {
	ef := addEtcdFlags(fs)
	effective := fs.Bool("effective", false, "print the config with flanneld's defaults applied, as felt and flanneld read it")
	return func(ctx context.Context, e *env, _ []string) error {
		store, cli, err := openStore(ctx, e, ef)
		if err != nil {
			return err
		}
		defer cli.Close()
		rctx, cancel := context.WithTimeout(ctx, ef.reqTimeout)
		defer cancel()
		resp, err := cli.Get(rctx, store.ConfigKey())
		if err != nil {
			return fmt.Errorf("read %s: %w", store.ConfigKey(), err)
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("%w at %s: write one with felt config set '{\"Network\":\"10.5.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}'",
				lease.ErrNoConfig, store.ConfigKey())
		}
		raw := resp.Kvs[0].Value
		cfg, perr := lease.ParseConfig(raw)
		out := raw
		if *effective && perr == nil {
			if out, err = json.MarshalIndent(cfg, "", "  "); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(e.stdout, "%s\n", out); err != nil {
			return err
		}
		if perr != nil {
			return fmt.Errorf("the config at %s is not usable: %w", store.ConfigKey(), perr)
		}
		return nil

	}
}
