package etcdstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/feltnet/felt/lease"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultEndpoints is flanneld's --etcd-endpoints default.
var DefaultEndpoints = []string{"http://127.0.0.1:4001", "http://127.0.0.1:2379"}

// ClientOptions are flanneld's --etcd-* flags.
type ClientOptions struct {
	Endpoints []string // each may be a comma list; empty means DefaultEndpoints
	Prefix    string   // "" means lease.DefaultPrefix; NewClient probes <prefix>/config
	// TLS is used only when both CertFile and KeyFile are set, as in
	// flanneld; CAFile is then optional (system roots otherwise).
	CAFile, CertFile, KeyFile string
	Username, Password        string
	DialTimeout               time.Duration // default 5 s
	RequestTimeout            time.Duration // bounds the reachability probe; default 10 s
	Logger                    *zap.Logger   // default: no logging
}

// NewClient dials etcd and proves it answers by reading <prefix>/config
// (its absence is fine here). The caller owns and closes the client.
func NewClient(ctx context.Context, o ClientOptions) (*clientv3.Client, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	eps, err := splitEndpoints(o.Endpoints)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := clientTLS(o, log)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		// The client picks TLS by scheme; with a key pair given, plain
		// http would silently ignore it.
		for i, ep := range eps {
			if strings.HasPrefix(ep, "http://") {
				eps[i] = "https://" + strings.TrimPrefix(ep, "http://")
				log.Warn("etcd endpoint is http:// but a certificate is set: using https", zap.String("endpoint", eps[i]))
			}
		}
	}
	dial := o.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	req := o.RequestTimeout
	if req <= 0 {
		req = 10 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: dial,
		// Without keepalives a member that hangs (frozen VM, host gone
		// without a FIN) holds a watch stream silent forever; these close
		// such a transport so the client moves to another member.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  tlsCfg,
		Username:             o.Username,
		Password:             o.Password,
		Logger:               log.Named("etcd-client"),
		Context:              ctx,
	})
	if err != nil {
		if terr := tlsDiagnosis(eps, tlsCfg, dial); terr != nil {
			return nil, terr
		}
		return nil, explainDialErr(eps, err)
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = lease.DefaultPrefix
	}
	pctx, cancel := context.WithTimeout(ctx, req)
	defer cancel()
	if _, err := cli.Get(pctx, path.Join(prefix, "config"), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if terr := tlsDiagnosis(eps, tlsCfg, dial); terr != nil {
			return nil, terr
		}
		return nil, explainDialErr(eps, err)
	}
	return cli, nil
}

func splitEndpoints(in []string) ([]string, error) {
	if len(in) == 0 {
		in = DefaultEndpoints
	}
	var out []string
	for _, e := range in {
		for _, ep := range strings.Split(e, ",") {
			ep = strings.TrimSpace(ep)
			if ep == "" {
				continue
			}
			if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
				return nil, fmt.Errorf("etcd endpoint %q: must start with http:// or https:// (e.g. http://127.0.0.1:2379)", ep)
			}
			out = append(out, ep)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("etcd endpoints %q: no endpoint given (e.g. http://127.0.0.1:2379)", strings.Join(in, ","))
	}
	return out, nil
}

// clientTLS follows flanneld: TLS only with both a cert and a key, at least
// TLS 1.2; otherwise plain http with a warning. Half a key pair is an error
// rather than a silent downgrade.
func clientTLS(o ClientOptions, log *zap.Logger) (*tls.Config, error) {
	switch {
	case o.CertFile == "" && o.KeyFile == "":
		if o.CAFile != "" {
			log.Warn("etcd CA file ignored: TLS needs a certificate and a key as well", zap.String("cafile", o.CAFile))
		}
		log.Warn("no certificate provided: connecting to etcd with http. This is insecure")
		return nil, nil
	case o.CertFile == "":
		return nil, fmt.Errorf("etcd certfile is empty while keyfile is %q: TLS needs both (or neither)", o.KeyFile)
	case o.KeyFile == "":
		return nil, fmt.Errorf("etcd keyfile is empty while certfile is %q: TLS needs both (or neither)", o.CertFile)
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("etcd certfile %q / keyfile %q: %w", o.CertFile, o.KeyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd cafile %q: %w", o.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd cafile %q: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// explainDialErr says what is wrong and what to do.
func explainDialErr(eps []string, err error) error {
	at := strings.Join(eps, ",")
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrGRPCAuthFailed):
		return fmt.Errorf("etcd at %s rejected the username or password: check --etcd-username and --etcd-password: %w", at, err)
	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrGRPCUserEmpty):
		return fmt.Errorf("etcd at %s has authentication enabled: give --etcd-username and --etcd-password: %w", at, err)
	case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrGRPCPermissionDenied):
		return fmt.Errorf("etcd at %s denied access: grant the etcd user read/write on the prefix: %w", at, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), strings.Contains(err.Error(), "Unavailable"):
		return fmt.Errorf("no etcd reachable at %s: start one with `felt etcd`, or point --etcd-endpoints at a running etcd: %w", at, err)
	}
	return fmt.Errorf("etcd at %s: %w", at, err)
}
