package etcdserver_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease/etcdserver"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func freeURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestStartServeCloseTwice(t *testing.T) {
	dir := t.TempDir()
	cfg := etcdserver.Config{DataDir: dir, ClientURLs: []string{freeURL(t)}, PeerURLs: []string{freeURL(t)},
		Logger: zap.NewNop(), UnsafeNoFsync: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := etcdserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if srv.ClientURL() != cfg.ClientURLs[0] {
		t.Fatalf("ClientURL() = %q, want %q", srv.ClientURL(), cfg.ClientURLs[0])
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}

	// A second member on the same client port must fail with a clear error.
	cfg2 := cfg
	cfg2.DataDir = t.TempDir()
	cfg2.PeerURLs = []string{freeURL(t)}
	if srv2, err := etcdserver.Start(ctx, cfg2); err == nil {
		srv2.Close()
		t.Fatalf("second member on %s started; want an address-in-use error", cfg.ClientURLs[0])
	} else if !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("error %q does not say the address is in use", err)
	}

	if err := srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	// Same data dir and ports again: the key survived.
	srv, err = etcdserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get after restart = %v, want k=v", resp.Kvs)
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  etcdserver.Config
		want string
	}{
		{etcdserver.Config{}, "DataDir"},
		{etcdserver.Config{DataDir: t.TempDir(), ClientURLs: []string{"127.0.0.1:2379"}}, "ClientURLs"},
		{etcdserver.Config{DataDir: t.TempDir(), PeerURLs: []string{"ftp://x:1"}}, "PeerURLs"},
		{etcdserver.Config{DataDir: t.TempDir(), ClientURLs: []string{"https://127.0.0.1:1"}}, "use https:// exactly when"},
		{etcdserver.Config{DataDir: t.TempDir(), CertFile: "c.pem"}, "TLS needs both"},
		{etcdserver.Config{DataDir: t.TempDir(), TrustedCAFile: "ca.pem"}, "TrustedCAFile"},
	} {
		_, err := etcdserver.Start(ctx, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) error = %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}
