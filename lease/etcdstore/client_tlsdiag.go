package etcdstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// tlsDiagnosis explains a failed dial to https endpoints. gRPC retries a
// failed TLS handshake until the dial timeout, so the caller sees only
// "context deadline exceeded"; one handshake of our own names the cause (an
// unknown CA, a name mismatch, a client certificate the server refused). It
// returns nil when no endpoint shows a TLS problem.
func tlsDiagnosis(eps []string, cfg *tls.Config, timeout time.Duration) error {
	for _, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			continue
		}
		c := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg != nil {
			c = cfg.Clone()
		}
		if c.ServerName == "" {
			c.ServerName = u.Hostname()
		}
		c.NextProtos = []string{"h2"}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", u.Host, c)
		if err == nil {
			// A TLS 1.3 server refuses a client certificate only after the
			// handshake, with an alert; a healthy one waits for us instead.
			conn.SetReadDeadline(time.Now().Add(min(timeout, 500*time.Millisecond)))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if isTLSErr(err) {
			hint := "check --etcd-cafile, --etcd-certfile and --etcd-keyfile"
			if cfg == nil {
				hint = "no client TLS is configured: as flanneld, felt uses --etcd-cafile only together with --etcd-certfile and --etcd-keyfile"
			}
			return fmt.Errorf("etcd at %s: TLS failed: %w (%s)", ep, err, hint)
		}
	}
	return nil
}

func isTLSErr(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		alert tls.AlertError
		rhe   tls.RecordHeaderError
		uae   x509.UnknownAuthorityError
		hne   x509.HostnameError
		cie   x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &alert) || errors.As(err, &rhe) ||
		errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie)
}
