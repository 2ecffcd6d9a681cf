// Package etcdserver runs a single-member etcd in-process (go.etcd.io/etcd
// server/v3 embed). It backs `felt etcd`, the tests and the demo, so a felt
// cluster needs no separately installed etcd.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// DefaultClientURL and DefaultPeerURL are etcd's own defaults, on loopback.
const (
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
)

// Config is what a single-member etcd needs. Zero fields take defaults.
type Config struct {
	Name       string   // member name; default "felt"
	DataDir    string   // required; created if absent, reused across restarts
	ClientURLs []string // listen and advertise; default DefaultClientURL
	PeerURLs   []string // listen and advertise; default DefaultPeerURL
	Logger     *zap.Logger
	// StartTimeout bounds the wait for the member to be ready; default 30 s.
	StartTimeout time.Duration
	// UnsafeNoFsync skips fsync: for tests and demos only, never for data
	// that must survive a machine crash.
	UnsafeNoFsync bool
	// AutoCompactionRevisions, when > 0, keeps only that many revisions.
	AutoCompactionRevisions int
	// CertFile and KeyFile serve clients over TLS (https ClientURLs); with
	// TrustedCAFile, clients must present a certificate signed by it.
	CertFile, KeyFile, TrustedCAFile string
}

// Server is a running embedded etcd member.
type Server struct {
	etcd      *embed.Etcd
	clientURL string
	once      sync.Once
}

// Start launches the member and waits until it serves clients, the start
// timeout passes or ctx ends. A taken port gives an error naming the URL.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	ec, err := embedConfig(cfg)
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("etcd: a listen address is already in use (client %v, peer %v): stop the other etcd or choose other URLs: %w",
				cfg.ClientURLs, cfg.PeerURLs, err)
		}
		return nil, fmt.Errorf("etcd: start in %s: %w", cfg.DataDir, err)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: failed while starting: %w", err)
	case <-t.C:
		e.Close()
		return nil, fmt.Errorf("etcd: not ready after %s (data dir %s)", timeout, cfg.DataDir)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcd: start: %w", ctx.Err())
	}
	return &Server{etcd: e, clientURL: ec.AdvertiseClientUrls[0].String()}, nil
}

// ClientURL is the first advertised client URL, for clients to dial.
func (s *Server) ClientURL() string { return s.clientURL }

// Err reports a fatal serving error after Start returned.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the member and releases its ports and data dir lock. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.once.Do(s.etcd.Close)
	return nil
}

func embedConfig(cfg Config) (*embed.Config, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("etcd config: DataDir is empty: give a directory for etcd's data")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd config: DataDir %q: %w", cfg.DataDir, err)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	if ec.Name == "" {
		ec.Name = "felt"
	}
	ec.Dir = cfg.DataDir
	client, err := parseURLs("ClientURLs", cfg.ClientURLs, DefaultClientURL)
	if err != nil {
		return nil, err
	}
	peer, err := parseURLs("PeerURLs", cfg.PeerURLs, DefaultPeerURL)
	if err != nil {
		return nil, err
	}
	if err := clientTLS(ec, cfg, client); err != nil {
		return nil, err
	}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = client, client
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = peer, peer
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.Named("etcd"))
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	if cfg.AutoCompactionRevisions > 0 {
		ec.AutoCompactionMode = "revision"
		ec.AutoCompactionRetention = fmt.Sprint(cfg.AutoCompactionRevisions)
	}
	return ec, nil
}

func clientTLS(ec *embed.Config, cfg Config, urls []url.URL) error {
	tlsOn := cfg.CertFile != "" || cfg.KeyFile != ""
	if tlsOn && (cfg.CertFile == "" || cfg.KeyFile == "") {
		return fmt.Errorf("etcd config: CertFile %q, KeyFile %q: TLS needs both", cfg.CertFile, cfg.KeyFile)
	}
	if cfg.TrustedCAFile != "" && !tlsOn {
		return fmt.Errorf("etcd config: TrustedCAFile %q: needs CertFile and KeyFile too", cfg.TrustedCAFile)
	}
	for _, u := range urls {
		if (u.Scheme == "https") != tlsOn {
			return fmt.Errorf("etcd config: ClientURLs %q: use https:// exactly when CertFile and KeyFile are set", u.String())
		}
	}
	ec.ClientTLSInfo.CertFile, ec.ClientTLSInfo.KeyFile = cfg.CertFile, cfg.KeyFile
	ec.ClientTLSInfo.TrustedCAFile = cfg.TrustedCAFile
	ec.ClientTLSInfo.ClientCertAuth = cfg.TrustedCAFile != ""
	return nil
}

func parseURLs(field string, raw []string, def string) ([]url.URL, error) {
	if len(raw) == 0 {
		raw = []string{def}
	}
	out := make([]url.URL, 0, len(raw))
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("etcd config: %s %q: want an http(s)://host:port URL", field, r)
		}
		out = append(out, *u)
	}
	return out, nil
}
