package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
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
	mac, err := newMAC()
	if err != nil {
		return nil, false, err
	}
	if err := storeMAC(path, mac); err != nil {
		return nil, false, err
	}
	return mac, true, nil
}

// newMAC returns a random locally administered unicast MAC.
func newMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = (mac[0] &^ 1) | 2
	return mac, nil
}

func storeMAC(path string, mac net.HardwareAddr) error {
	if err := writeFileAtomic(path, []byte(mac.String()+"\n")); err != nil {
		return fmt.Errorf("vtep mac file: %w", err)
	}
	return nil
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

// vtep is this node's VtepMAC: the file that keeps it, the framing that
// writes it and the lease attributes that publish it. The engine gets the
// framing at New and, after resolve, from router.Engine.SetFramer.
type vtep struct {
	path   string
	vni    uint32
	public netip.Addr

	mu     sync.Mutex
	mac    net.HardwareAddr
	framer *encap.VXLAN // frames with mac (and mac6)

	// The IPv6 side (ipv6.go), set once before the lease: flanneld's
	// flannel-v6.<VNI> MAC and PublicIPv6. mac6 nil: IPv4 only.
	mac6    net.HardwareAddr
	public6 netip.Addr
	v6only  bool // EnableIPv4 false: BackendData left out of the lease
}

func newVTEP(path string, vni uint32, public netip.Addr, mac net.HardwareAddr) *vtep {
	v := &vtep{path: path, vni: vni, public: public}
	v.set(mac)
	return v
}

func (v *vtep) set(mac net.HardwareAddr) {
	fr := encap.NewVXLAN(v.vni, [6]byte(mac))
	if v.mac6 != nil {
		fr = encap.NewVXLANDual(v.vni, [6]byte(mac), [6]byte(v.mac6))
	}
	v.mu.Lock()
	v.mac, v.framer = mac, fr
	v.mu.Unlock()
}

// current returns the VtepMAC in use (the caller must not modify it).
func (v *vtep) current() net.HardwareAddr {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mac
}

// framing returns the vxlan framing for the VtepMAC in use.
func (v *vtep) framing() *encap.VXLAN {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.framer
}

func (v *vtep) attrs() lease.Attrs {
	if v.v6only {
		return lease.NewDualVXLANAttrs(v.public, v.public6, v.vni, nil, v.mac6) // no BackendData, as flanneld
	}
	if v.mac6 != nil {
		return lease.NewDualVXLANAttrs(v.public, v.public6, v.vni, v.current(), v.mac6)
	}
	return lease.NewVXLANAttrs(v.public, v.vni, v.current())
}

// collision returns a peer, other than a stale lease of our own PublicIP,
// that publishes our VtepMAC: every frame between us would be dropped as
// loop_mac at both ends.
func (v *vtep) collision(peers []router.Peer) (router.Peer, bool) {
	cur := [6]byte(v.current())
	for _, p := range peers {
		if p.MAC == cur && p.Addr.Addr() != v.public {
			return p, true
		}
	}
	return router.Peer{}, false
}

// resolve moves this node off a VtepMAC that peer also publishes: a new
// random MAC, stored in the file (kept in memory if that fails), and
// returned as the attrs to publish; the caller hands framing() to the
// engine. Each side of a
// felt–felt collision may do this at once; both end on fresh random MACs. A
// flanneld peer never changes its MAC, so felt must.
func (v *vtep) resolve(peer router.Peer, log *zap.Logger) (lease.Attrs, error) {
	old := v.current()
	mac, err := newMAC()
	if err != nil {
		return lease.Attrs{}, fmt.Errorf("new VtepMAC: %w", err)
	}
	v.set(mac)
	log.Warn("VtepMAC collision: a peer's lease publishes this node's VtepMAC, so every vxlan frame between the two "+
		"was dropped (loop_mac); using a new one. Give each node its own VtepMAC file (a shared directory or a cloned disk?)",
		zap.Stringer("old", old), zap.Stringer("new", mac), zap.String("file", v.path),
		zap.Stringer("peer_subnet", peer.Subnet), zap.Stringer("peer", peer.Addr.Addr()))
	if err := storeMAC(v.path, mac); err != nil {
		log.Error("the new VtepMAC is used but not stored; a restart goes back to the old one", zap.Error(err))
	}
	return v.attrs(), nil
}
