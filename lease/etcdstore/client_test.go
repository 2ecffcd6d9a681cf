package etcdstore_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdserver"
	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/lease/etcdtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap/zaptest"
)

func TestNewClientBadInput(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		o    etcdstore.ClientOptions
		want string
	}{
		{etcdstore.ClientOptions{Endpoints: []string{"127.0.0.1:2379"}}, `etcd endpoint "127.0.0.1:2379": must start with http://`},
		{etcdstore.ClientOptions{Endpoints: []string{" , "}}, "no endpoint given"},
		{etcdstore.ClientOptions{Endpoints: []string{"http://127.0.0.1:1"}, CertFile: "/x.pem"}, "keyfile is empty"},
		{etcdstore.ClientOptions{Endpoints: []string{"http://127.0.0.1:1"}, KeyFile: "/x.key"}, "certfile is empty"},
		{etcdstore.ClientOptions{Endpoints: []string{"http://127.0.0.1:1"}, CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}, "/nonexistent.pem"},
	} {
		cli, err := etcdstore.NewClient(ctx, c.o)
		if err == nil {
			cli.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewClient(%+v) error = %v, want it to contain %q", c.o, err, c.want)
		}
	}
}

func TestNewClientUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	_, err = etcdstore.NewClient(context.Background(), etcdstore.ClientOptions{
		Endpoints: []string{addr}, DialTimeout: time.Second, RequestTimeout: time.Second, Logger: zaptest.NewLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "no etcd reachable at "+addr) || !strings.Contains(err.Error(), "felt etcd") {
		t.Fatalf("NewClient to %s: %v; want 'no etcd reachable' with what to do", addr, err)
	}
}

func TestNewClientAuth(t *testing.T) {
	etcdtest.Run(t, func(t *testing.T, s *etcdtest.Server) {
		ctx := testCtx(t)
		// Comma lists are split; the dead first endpoint is skipped.
		o := etcdstore.ClientOptions{Endpoints: []string{"http://127.0.0.1:1," + s.Endpoint()}, Logger: zaptest.NewLogger(t)}
		cli, err := etcdstore.NewClient(ctx, o)
		if err != nil {
			t.Fatalf("NewClient without auth: %v", err)
		}
		defer cli.Close()
		for _, step := range []func() error{
			func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
			func() error { _, err := cli.UserAdd(ctx, "root", "s3cret"); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := cli.AuthEnable(ctx); return err },
		} {
			if err := step(); err != nil {
				t.Fatalf("enable auth: %v", err)
			}
		}
		o.Endpoints = []string{s.Endpoint()}
		o.Username, o.Password = "root", "wrong"
		if c, err := etcdstore.NewClient(ctx, o); err == nil {
			c.Close()
			t.Fatal("NewClient with a wrong password succeeded")
		} else if !errors.Is(err, rpctypes.ErrAuthFailed) || !strings.Contains(err.Error(), "--etcd-password") {
			t.Errorf("wrong password: %v; want ErrAuthFailed naming the flags", err)
		}
		o.Password = "s3cret"
		c, err := etcdstore.NewClient(ctx, o)
		if err != nil {
			t.Fatalf("NewClient with the right password: %v", err)
		}
		defer c.Close()
		st := etcdstore.New(c, "", etcdstore.Options{})
		if _, err := st.GetConfig(ctx); !errors.Is(err, lease.ErrNoConfig) {
			t.Errorf("GetConfig as root: %v, want ErrNoConfig", err)
		}
	})
}

// TestNewClientTLS runs an embedded etcd that requires client certificates
// and connects with flanneld's --etcd-cafile/certfile/keyfile.
func TestNewClientTLS(t *testing.T) {
	pki := etcdtest.NewPKI(t, netip.MustParseAddr("127.0.0.1"))
	ctx := testCtx(t)
	clientAddr := startTLSEtcd(t, ctx, pki)

	o := etcdstore.ClientOptions{Endpoints: []string{"http://" + clientAddr}, CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey,
		DialTimeout: 2 * time.Second, RequestTimeout: 3 * time.Second, Logger: zaptest.NewLogger(t)}
	c, err := etcdstore.NewClient(ctx, o)
	if err != nil {
		t.Fatalf("NewClient with a client certificate: %v", err)
	}
	defer c.Close()
	if _, err := etcdstore.New(c, "", etcdstore.Options{}).GetConfig(ctx); !errors.Is(err, lease.ErrNoConfig) {
		t.Errorf("GetConfig over TLS: %v, want ErrNoConfig", err)
	}
	// Without the key pair felt falls back to plain http, which a TLS-only
	// etcd does not answer.
	o.CertFile, o.KeyFile = "", ""
	if c2, err := etcdstore.NewClient(ctx, o); err == nil {
		c2.Close()
		t.Error("NewClient without a client certificate reached a TLS-only etcd")
	}
}

// startTLSEtcd starts an embedded etcd that serves clients over TLS with
// pki's server pair on a free loopback port (checking client certificates
// against pki's CA) and returns that host:port.
func startTLSEtcd(t *testing.T, ctx context.Context, pki *etcdtest.PKI) string {
	t.Helper()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	addr := free()
	srv, err := etcdserver.Start(ctx, etcdserver.Config{DataDir: filepath.Join(t.TempDir(), "data"),
		ClientURLs: []string{"https://" + addr}, PeerURLs: []string{"http://" + free()},
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, TrustedCAFile: pki.CA, UnsafeNoFsync: true})
	if err != nil {
		t.Fatalf("start etcd with TLS: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return addr
}
