package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/feltnet/felt/lease/etcdtest"
)

// TestRestartKeepsData checks the helper's contract: a killed and restarted
// member serves the same data on the same endpoint.
func TestRestartKeepsData(t *testing.T) {
	etcdtest.Run(t, func(t *testing.T, s *etcdtest.Server) {
		cli := s.Client(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, "/felttest/k", "v1"); err != nil {
			t.Fatalf("put: %v", err)
		}
		ep := s.Endpoint()
		s.Restart()
		if s.Endpoint() != ep {
			t.Fatalf("endpoint changed across restart: %s -> %s", ep, s.Endpoint())
		}
		resp, err := cli.Get(ctx, "/felttest/k")
		if err != nil {
			t.Fatalf("get after restart: %v", err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
			t.Fatalf("get after restart = %v, want one kv with value v1", resp.Kvs)
		}
		s.Kill()
		s.Kill() // safe twice
		short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel2()
		if _, err := cli.Get(short, "/felttest/k"); err == nil {
			t.Fatalf("get from a killed member succeeded")
		}
	})
}
