package lease_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap/zaptest"
)

func TestNewClientBadInput(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		o    lease.EtcdOptions
		want string
	}{
		{lease.EtcdOptions{Endpoints: []string{"127.0.0.1:2379"}}, `etcd endpoint "127.0.0.1:2379": must start with http://`},
		{lease.EtcdOptions{Endpoints: []string{" , "}}, "no endpoint given"},
		{lease.EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, CertFile: "/x.pem"}, "keyfile is empty"},
		{lease.EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, KeyFile: "/x.key"}, "certfile is empty"},
		{lease.EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}, "/nonexistent.pem"},
	} {
		cli, err := lease.NewClient(ctx, c.o)
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
	_, err = lease.NewClient(context.Background(), lease.EtcdOptions{
		Endpoints: []string{addr}, DialTimeout: time.Second, RequestTimeout: time.Second, Logger: zaptest.NewLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "no etcd reachable at "+addr) || !strings.Contains(err.Error(), "felt etcd") {
		t.Fatalf("NewClient to %s: %v; want 'no etcd reachable' with what to do", addr, err)
	}
}

func TestNewClientAuth(t *testing.T) {
	etcdtest.Run(t, func(t *testing.T, s *etcdtest.Server) {
		ctx := testCtx(t)
		// Comma lists are split; the dead first endpoint is skipped.
		o := lease.EtcdOptions{Endpoints: []string{"http://127.0.0.1:1," + s.Endpoint()}, Logger: zaptest.NewLogger(t)}
		cli, err := lease.NewClient(ctx, o)
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
		if c, err := lease.NewClient(ctx, o); err == nil {
			c.Close()
			t.Fatal("NewClient with a wrong password succeeded")
		} else if !errors.Is(err, rpctypes.ErrAuthFailed) || !strings.Contains(err.Error(), "--etcd-password") {
			t.Errorf("wrong password: %v; want ErrAuthFailed naming the flags", err)
		}
		o.Password = "s3cret"
		c, err := lease.NewClient(ctx, o)
		if err != nil {
			t.Fatalf("NewClient with the right password: %v", err)
		}
		defer c.Close()
		st := lease.NewEtcdStore(c, "", lease.StoreOptions{})
		if _, err := st.GetConfig(ctx); !errors.Is(err, lease.ErrNoConfig) {
			t.Errorf("GetConfig as root: %v, want ErrNoConfig", err)
		}
	})
}
