package wg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyFile: a new key is written as flanneld writes it and read back the
// same; a key from wg genkey (with a newline) is read; garbage is refused,
// not replaced.
func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "flannel", "wgkey")
	k, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first load: %v created=%v", err, created)
	}
	b, _ := os.ReadFile(path)
	if string(b) != k.String() || len(b) != 44 {
		t.Fatalf("key file holds %q, want %q (base64, no newline)", b, k.String())
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o400 {
		t.Fatalf("mode %v, want 0400", fi.Mode().Perm())
	}
	if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
		t.Fatalf("key not clamped as wg genkey: %x", k)
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || k2 != k {
		t.Fatalf("reload: %v created=%v same=%v", err, created, k2 == k)
	}

	// wg genkey's output and its public key (RFC 7748's test vector).
	other := filepath.Join(t.TempDir(), "wgkey")
	os.WriteFile(other, []byte("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"), 0o400)
	k3, _, err := LoadOrCreateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k3.PublicKey().String(), "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="; got != want {
		t.Fatalf("public key %s, want %s", got, want)
	}

	bad := filepath.Join(t.TempDir(), "wgkey")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "must hold a base64 private key") {
		t.Fatalf("garbage key file: %v", err)
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a key" {
		t.Fatalf("garbage key file overwritten: %q", b)
	}
}

func TestParseStats(t *testing.T) {
	in := "private_key=00\nlisten_port=51820\n" +
		"public_key=" + strings.Repeat("11", 32) + "\nendpoint=10.0.0.2:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"rx_bytes=10\ntx_bytes=20\nallowed_ip=10.5.1.0/24\n" +
		"public_key=" + strings.Repeat("22", 32) + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\nrx_bytes=0\ntx_bytes=0\nallowed_ip=10.5.2.0/24\nerrno=0\n"
	st, err := parseStats(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].PublicKey[0] != 0x11 || st[0].Endpoint.String() != "10.0.0.2:51820" ||
		st[0].LastHandshake.Unix() != 1700000000 || st[0].RxBytes != 10 || st[0].TxBytes != 20 ||
		len(st[0].AllowedIPs) != 1 || st[0].AllowedIPs[0].String() != "10.5.1.0/24" {
		t.Fatalf("peer 0: %+v", st)
	}
	if !st[1].LastHandshake.IsZero() || st[1].Endpoint.IsValid() || st[1].AllowedIPs[0].String() != "10.5.2.0/24" {
		t.Fatalf("peer 1: %+v", st[1])
	}
	if _, err := parseStats("public_key=zz\n"); err == nil {
		t.Fatal("bad public_key accepted")
	}
}
