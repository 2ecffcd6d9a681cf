package etcdstore_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/lease/etcdtest"
	"go.uber.org/zap/zaptest"
)

// TestNewClientTLSBad: a CA that did not sign etcd's certificate, a server
// name the certificate does not carry, and a missing client certificate
// each fail with the TLS cause and the flags to check, not with a bare dial
// timeout (gRPC retries a failed handshake until the deadline).
func TestNewClientTLSBad(t *testing.T) {
	pki := etcdtest.NewPKI(t, netip.MustParseAddr("127.0.0.1"))
	ctx := testCtx(t)
	addr := startTLSEtcd(t, ctx, pki)

	port := addr[strings.LastIndexByte(addr, ':'):]
	for _, c := range []struct {
		name     string
		endpoint string
		ca       string
		pair     bool
		want     []string
	}{
		{"wrong CA", "https://" + addr, pki.OtherCA, true, []string{"TLS failed", "unknown authority", "--etcd-cafile"}},
		{"name not in the certificate", "https://localhost" + port, pki.CA, true, []string{"TLS failed", "localhost", "--etcd-cafile"}},
		{"no client certificate", "https://" + addr, pki.CA, false, []string{"TLS failed", "--etcd-certfile"}},
	} {
		o := etcdstore.ClientOptions{Endpoints: []string{c.endpoint}, CAFile: c.ca,
			DialTimeout: time.Second, RequestTimeout: time.Second, Logger: zaptest.NewLogger(t)}
		if c.pair {
			o.CertFile, o.KeyFile = pki.ClientCert, pki.ClientKey
		}
		cli, err := etcdstore.NewClient(ctx, o)
		if err == nil {
			cli.Close()
			t.Errorf("%s: NewClient succeeded", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
	}
}
