package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// VtepMACFile is the default name of the file, beside subnet.env, that keeps
// felt's VtepMAC across restarts. flanneld's kernel device keeps its MAC only
// while the device lives; every change forces all peers to re-program, so felt
// persists it.
const VtepMACFile = "felt-vtep-mac"

// loadOrCreateMAC reads the MAC stored at path, or makes a random locally
// administered unicast one (as flanneld does) and stores it atomically.
func loadOrCreateMAC(path string) (net.HardwareAddr, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		mac, perr := net.ParseMAC(strings.TrimSpace(string(b)))
		if perr == nil && len(mac) == 6 && mac[0]&1 == 0 {
			return mac, false, nil
		}
		return nil, false, fmt.Errorf("vtep mac file %s: %q is not a unicast 6-byte MAC; delete the file to make a new one", path, strings.TrimSpace(string(b)))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("vtep mac file: %w", err)
	}
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, false, err
	}
	mac[0] = (mac[0] &^ 1) | 2
	if err := writeFileAtomic(path, []byte(mac.String()+"\n")); err != nil {
		return nil, false, fmt.Errorf("vtep mac file: %w", err)
	}
	return mac, true, nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
