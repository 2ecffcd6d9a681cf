package etcdstore_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease/etcdstore"
	"go.uber.org/zap/zaptest"
)

// TestNewClientTLSBad: a CA that did not sign etcd's certificate, a server
// name the certificate does not carry, and a missing client certificate
// each fail with the TLS cause and the flags to check, not with a bare dial
// timeout (gRPC retries a failed handshake until the deadline).
func TestNewClientTLSBad(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	caT := func(sn int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
	}
	caFile, _, ca, caKey := writePEM(t, dir, "ca", caT(1, "felt test CA"), nil, nil)
	otherCA, _, _, _ := writePEM(t, dir, "other", caT(2, "another CA"), nil, nil)
	leaf := func(sn int64, cn string, ips ...net.IP) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: ips,
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	}
	srvCert, srvKey, _, _ := writePEM(t, dir, "server", leaf(3, "etcd", net.IPv4(127, 0, 0, 1)), ca, caKey)
	cliCert, cliKey, _, _ := writePEM(t, dir, "client", leaf(4, "felt"), ca, caKey)

	ctx := testCtx(t)
	addr := startTLSEtcd(t, ctx, dir, srvCert, srvKey, caFile)

	port := addr[strings.LastIndexByte(addr, ':'):]
	for _, c := range []struct {
		name     string
		endpoint string
		ca       string
		pair     bool
		want     []string
	}{
		{"wrong CA", "https://" + addr, otherCA, true, []string{"TLS failed", "unknown authority", "--etcd-cafile"}},
		{"name not in the certificate", "https://localhost" + port, caFile, true, []string{"TLS failed", "localhost", "--etcd-cafile"}},
		{"no client certificate", "https://" + addr, caFile, false, []string{"TLS failed", "--etcd-certfile"}},
	} {
		o := etcdstore.ClientOptions{Endpoints: []string{c.endpoint}, CAFile: c.ca,
			DialTimeout: time.Second, RequestTimeout: time.Second, Logger: zaptest.NewLogger(t)}
		if c.pair {
			o.CertFile, o.KeyFile = cliCert, cliKey
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
