package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/feltnet/felt/lease"
)

// fakeConfig answers GetConfig from a list of results, then repeats the last.
type fakeConfig struct {
	results []error
	calls   int
}

func (f *fakeConfig) GetConfig(context.Context) (*lease.Config, error) {
	i := min(f.calls, len(f.results)-1)
	f.calls++
	if f.results[i] != nil {
		return nil, f.results[i]
	}
	return &lease.Config{SubnetLen: 24}, nil
}

func TestWaitConfigWaitsForMissingConfig(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	src := &fakeConfig{results: []error{lease.ErrNoConfig, lease.ErrNoConfig, errors.New("etcd leader changed"), nil}}
	c, err := waitConfig(t.Context(), src, "/p", zap.New(core))
	if err != nil || c.SubnetLen != 24 || src.calls != 4 {
		t.Fatalf("waitConfig = %+v, %v after %d reads; want the config after 4", c, err, src.calls)
	}
	if n := logs.FilterMessageSnippet("network config not found").Len(); n != 1 {
		t.Errorf("%d 'not found' hints, want 1", n)
	}
}

func TestWaitConfigBadConfigIsFatal(t *testing.T) {
	// As etcdstore.Store wraps a config that does not validate: the
	// backend's error comes from lease.Config.Validate alone.
	_, perr := lease.ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"ipip"}}`))
	src := &fakeConfig{results: []error{fmt.Errorf("network config /p/config: %w: %w", lease.ErrBadConfig, perr)}}
	_, err := waitConfig(t.Context(), src, "/p", zap.NewNop())
	if err == nil || src.calls != 1 || !strings.Contains(err.Error(), `Backend.Type "ipip": felt speaks only "udp", "vxlan", "wireguard", "host-gw"`) ||
		!strings.Contains(err.Error(), "felt config set") {
		t.Fatalf("waitConfig = %v after %d reads, want the backend named at once with a hint", err, src.calls)
	}
}

func TestWaitConfigStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := waitConfig(ctx, &fakeConfig{results: []error{lease.ErrNoConfig}}, "/p", zap.NewNop()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitConfig = %v, want the context's error", err)
	}
}

func TestGroupFirstFailureCancelsTheRest(t *testing.T) {
	g := newGroup(t.Context())
	stopped := make(chan struct{})
	g.spawn("waits", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return ctx.Err() })
	g.spawn("fails", func(context.Context) error { return errors.New("boom") })
	err := g.wait()
	<-stopped
	if err == nil || err.Error() != "fails: boom" {
		t.Fatalf("wait = %v, want %q", err, "fails: boom")
	}
}

func TestGroupPlainCancelIsNil(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	g := newGroup(ctx)
	g.spawn("waits", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	cancel()
	if err := g.wait(); err != nil {
		t.Fatalf("wait after the parent's cancel = %v, want nil", err)
	}
}
