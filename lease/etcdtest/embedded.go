package etcdtest

import (
	"context"

	"github.com/feltnet/felt/lease/etcdserver"
	"go.uber.org/zap"
)

type embedded struct{ srv *etcdserver.Server }

func startEmbedded(ctx context.Context, s *Server) (process, error) {
	srv, err := etcdserver.Start(ctx, etcdserver.Config{
		Name:          "felttest",
		DataDir:       s.dir,
		ClientURLs:    []string{s.clientURL},
		PeerURLs:      []string{s.peerURL},
		Logger:        zap.NewNop(),
		UnsafeNoFsync: true,
	})
	if err != nil {
		return nil, err
	}
	return embedded{srv}, nil
}

func (e embedded) kill() error { return e.srv.Close() }
