package wg

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/feltnet/felt/internal/atomicfile"
	"github.com/feltnet/felt/lease"
)

// DefaultKeyFile is where flanneld keeps its wireguard private key;
// flanneld's WIREGUARD_KEY_FILE environment variable overrides it.
const DefaultKeyFile = "/run/flannel/wgkey"

// Key is a Curve25519 key: a private key, a public key or a pre-shared key.
type Key [32]byte

// String is the key in wg(8)'s and flanneld's form: standard base64.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// PublicKey derives the public key of a private key.
func (k Key) PublicKey() Key {
	// X25519 accepts every 32-byte string (it clamps), so this cannot fail.
	priv, _ := ecdh.X25519().NewPrivateKey(k[:])
	var pub Key
	copy(pub[:], priv.PublicKey().Bytes())
	return pub
}

// GenerateKey returns a new private key, clamped as wg genkey writes it.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("wireguard: generate a private key: %w", err)
	}
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k, nil
}

// LoadOrCreateKey reads the private key at path, or, when there is no file,
// generates one and writes it there as flanneld does: base64 without a
// newline, mode 0400, the directory made 0755 if missing. It reports whether
// it created the key. A file that holds no key is an error, never
// overwritten: the public key in the lease would change under the peers.
func LoadOrCreateKey(path string) (Key, bool, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		// flanneld writes no newline; a key written with wg genkey has one.
		k, err := lease.ParseWireGuardKey(string(bytes.TrimSpace(b)))
		if err != nil {
			return Key{}, false, fmt.Errorf("wireguard: key file %s: must hold a base64 private key of 32 bytes (wg genkey): %v "+
				"(fix or delete it: a new key changes this node's PublicKey)", path, err)
		}
		return k, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return Key{}, false, fmt.Errorf("wireguard: read key file: %w", err)
	}
	k, err := GenerateKey()
	if err != nil {
		return Key{}, false, err
	}
	if err := writeKey(path, k); err != nil {
		return Key{}, false, err
	}
	return k, true, nil
}

// writeKey writes k to path through a temporary file and a rename, so that
// a crash leaves either no key or the whole key.
func writeKey(path string, k Key) error {
	if err := atomicfile.Write(path, []byte(k.String()), 0o400); err != nil {
		return fmt.Errorf("wireguard: key file: %w", err)
	}
	return nil
}
