package main

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/feltnet/felt/lease/etcdstore"
)

// openStore dials etcd as the flags say and returns the lease store and
// its client, which the caller closes. Client logs are kept to errors: a
// one-shot command reports its own failure.
func openStore(ctx context.Context, e *env, f *etcdFlags) (*etcdstore.Store, *clientv3.Client, error) {
	o, err := f.options()
	if err != nil {
		return nil, nil, err
	}
	log := e.log.WithOptions(zap.IncreaseLevel(zapcore.ErrorLevel))
	o.Logger = log
	cli, err := etcdstore.NewClient(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	s := etcdstore.New(cli, o.Prefix, etcdstore.Options{Logger: log, Now: e.now, RequestTimeout: o.RequestTimeout})
	return s, cli, nil
}
