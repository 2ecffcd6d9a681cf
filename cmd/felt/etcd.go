package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/feltnet/felt/lease/etcdserver"
)

// cmdEtcd is `felt etcd`: it runs a single-member embedded etcd until
// SIGINT/SIGTERM (ctx) or a fatal serving error.
func cmdEtcd(fs *flag.FlagSet) action {
	dataDir := fs.String("data-dir", "felt.etcd", "etcd data directory (created if absent, reused on restart)")
	clientURLs := fs.String("listen-client-urls", etcdserver.DefaultClientURL, "comma-separated URLs to serve clients on (also advertised)")
	peerURLs := fs.String("listen-peer-urls", etcdserver.DefaultPeerURL, "comma-separated URLs for peer traffic (also advertised)")
	name := fs.String("name", "felt", "member name")
	level := zapcore.WarnLevel
	fs.Var(&level, "log-level", "etcd's log level: debug, info, warn, error")
	return func(ctx context.Context, e *env, _ []string) error {
		srv, err := etcdserver.Start(ctx, etcdserver.Config{
			Name:       *name,
			DataDir:    *dataDir,
			ClientURLs: splitList(*clientURLs),
			PeerURLs:   splitList(*peerURLs),
			Logger:     e.log.WithOptions(zap.IncreaseLevel(level)),
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Fprintf(e.stdout, "etcd %q serving clients at %s (data in %s); stop with Ctrl-C\n", *name, srv.ClientURL(), *dataDir)
		select {
		case <-ctx.Done():
			return nil
		case err := <-srv.Err():
			return fmt.Errorf("etcd stopped: %w", err)
		}

	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
