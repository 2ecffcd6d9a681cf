package demo

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdserver"
)

// startEtcd runs an embedded etcd in this process on the lab's gateway
// address (the hosts reach it over the underlay bridge), with its data in
// dir. The caller closes it.
func startEtcd(ctx context.Context, gw netip.Addr, dir string, log *zap.Logger) (*etcdserver.Server, error) {
	ports, err := freePorts(gw, 2)
	if err != nil {
		return nil, err
	}
	client, peer := ports[0], ports[1]
	return etcdserver.Start(ctx, etcdserver.Config{
		Name:       "felt-demo",
		DataDir:    filepath.Join(dir, "etcd"),
		ClientURLs: []string{"http://" + client.String()},
		PeerURLs:   []string{"http://" + peer.String()},
		// etcd logs errors on every normal shutdown: keep only its panics.
		Logger:        log.WithOptions(zap.IncreaseLevel(zapcore.DPanicLevel)),
		UnsafeNoFsync: true, // a demo's data need not survive a machine crash
	})
}

// freePorts asks the kernel for n distinct free TCP ports on ip: every
// listener stays open until all are chosen, since a port released early can
// be handed out again (etcd's client and peer URLs once got the same one).
// Another process could take a port before etcd binds it; etcd then fails
// with an error naming it.
func freePorts(ip netip.Addr, n int) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for range n {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).AddrPort())
	}
	return out, nil
}

// putConfig validates the network config and stores it at flannel's key.
func putConfig(ctx context.Context, url, config string) error {
	if _, err := lease.ParseConfig([]byte(config)); err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client for %s: %w", url, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, lease.DefaultPrefix+"/config", config); err != nil {
		return fmt.Errorf("put %s/config: %w", lease.DefaultPrefix, err)
	}
	return nil
}
