package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
)

// configSource is where the network config is read (etcdstore.Store). Its
// config is parsed and validated (lease.ParseConfig), backend type included.
type configSource interface {
	GetConfig(ctx context.Context) (*lease.Config, error)
}

// waitConfig reads <prefix>/config, retrying every second while it is absent
// or etcd fails, as flanneld does, with flanneld's hint logged once. A config
// that does not validate (an unsupported backend, say) is fatal.
func waitConfig(ctx context.Context, src configSource, prefix string, log *zap.Logger) (*lease.Config, error) {
	warned := false
	var lastErr time.Time
	for {
		c, err := src.GetConfig(ctx)
		switch {
		case err == nil:
			return c, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, lease.ErrBadConfig):
			return nil, fmt.Errorf("%w (fix it with `felt config set`)", err)
		case !errors.Is(err, lease.ErrNoConfig):
			// etcd unreachable for a moment, a leader change: retry, as
			// flanneld does, and say so now and then.
			if time.Since(lastErr) > 10*time.Second {
				log.Warn("reading the network config failed; retrying every second", zap.Error(err))
				lastErr = time.Now()
			}
		case !warned:
			log.Warn("network config not found in etcd; waiting for it (create it with `felt config set '{\"Network\":\"10.5.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}'`, or etcdctl with ETCDCTL_API=3)",
				zap.String("key", prefix+"/config"))
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
