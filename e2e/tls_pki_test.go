package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a throwaway CA with a server certificate for etcd (valid for
// the given IPs) and a client certificate for felt, all PEM files in a temp
// dir; otherCA is an unrelated CA, for the wrong-CA cases.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA                                          string
}

func newTestPKI(t *testing.T, ips ...netip.Addr) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{}
	now := time.Now()
	tmpl := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	}
	caT := tmpl(1, "felt e2e CA")
	caT.IsCA, caT.BasicConstraintsValid, caT.KeyUsage = true, true, x509.KeyUsageCertSign
	var ca *x509.Certificate
	var caKey *ecdsa.PrivateKey
	p.ca, _, ca, caKey = writeCert(t, dir, "ca", caT, nil, nil)
	otherT := tmpl(9, "some other CA")
	otherT.IsCA, otherT.BasicConstraintsValid, otherT.KeyUsage = true, true, x509.KeyUsageCertSign
	p.otherCA, _, _, _ = writeCert(t, dir, "other-ca", otherT, nil, nil)

	srvT := tmpl(2, "etcd")
	for _, ip := range ips {
		srvT.IPAddresses = append(srvT.IPAddresses, net.IP(ip.AsSlice()))
	}
	srvT.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	p.serverCert, p.serverKey, _, _ = writeCert(t, dir, "server", srvT, ca, caKey)
	cliT := tmpl(3, "felt")
	cliT.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.clientCert, p.clientKey, _, _ = writeCert(t, dir, "client", cliT, ca, caKey)
	return p
}

// clientTLS is the test's own client configuration (CA and client pair).
func (p *testPKI) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pemCA, err := os.ReadFile(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// flags are felt's --etcd-* TLS flags for the client pair, with ca as CA.
func (p *testPKI) flags(ca string) []string {
	return []string{"--etcd-cafile", ca, "--etcd-certfile", p.clientCert, "--etcd-keyfile", p.clientKey}
}

// writeCert signs tmpl with parent (self-signed when parent is nil) and
// writes the certificate and a fresh key as PEM.
func writeCert(t *testing.T, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cp, kp := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cp, kp, cert, key
}
