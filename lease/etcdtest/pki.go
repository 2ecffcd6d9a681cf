package etcdtest

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

// PKI is a throwaway CA with a server certificate for etcd and a client
// certificate for felt, and an unrelated CA for the wrong-CA cases: paths of
// PEM files in a temp dir removed when the test ends.
type PKI struct {
	CA                    string // the CA that signed both pairs
	ServerCert, ServerKey string // for etcd; valid for the IPs given to NewPKI
	ClientCert, ClientKey string
	OtherCA               string // a CA that signed neither
}

// NewPKI writes a PKI whose server certificate is valid for ips (and may
// also serve as a client certificate, as etcd peers use it).
func NewPKI(t testing.TB, ips ...netip.Addr) *PKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	tmpl := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	}
	caTmpl := func(serial int64, cn string) *x509.Certificate {
		c := tmpl(serial, cn)
		c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
		return c
	}
	p := &PKI{}
	var ca *x509.Certificate
	var caKey *ecdsa.PrivateKey
	p.CA, _, ca, caKey = writeCert(t, dir, "ca", caTmpl(1, "felt test CA"), nil, nil)
	p.OtherCA, _, _, _ = writeCert(t, dir, "other-ca", caTmpl(2, "some other CA"), nil, nil)
	srv := tmpl(3, "etcd")
	for _, ip := range ips {
		srv.IPAddresses = append(srv.IPAddresses, net.IP(ip.AsSlice()))
	}
	srv.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	p.ServerCert, p.ServerKey, _, _ = writeCert(t, dir, "server", srv, ca, caKey)
	cli := tmpl(4, "felt")
	cli.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	p.ClientCert, p.ClientKey, _, _ = writeCert(t, dir, "client", cli, ca, caKey)
	return p
}

// ClientTLS is a client configuration with the CA and the client pair, for a
// test's own etcd client.
func (p *PKI) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	pemCA, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// writeCert signs tmpl with parent (self-signed when parent is nil) and
// writes the certificate and a fresh key as dir/name.pem and
// dir/name-key.pem.
func writeCert(t testing.TB, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
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
