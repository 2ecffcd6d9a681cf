package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/atomicfile"
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
	if err := atomicfile.Write(path, []byte(mac.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("vtep mac file: %w", err)
	}
	return nil
}

// vtep is this node's VtepMAC: the file that keeps it, the framing that
// writes it and the lease attributes that publish it. The engine gets the
// framing at New and, after resolve, from router.Engine.SetFramer.
type vtep struct {
	path   string // the IPv4 VtepMAC's file; the IPv6 one's is path + "-v6"
	vni    uint32
	public netip.Addr

	mu     sync.Mutex
	mac    net.HardwareAddr
	mac6   net.HardwareAddr // flanneld's flannel-v6.<VNI> MAC; nil: IPv4 only
	framer *encap.VXLAN     // frames with mac and mac6

	// The IPv6 side (ipv6.go), set once before the lease.
	public6 netip.Addr
	v6only  bool // EnableIPv4 false: BackendData left out of the lease
}

func newVTEP(path string, vni uint32, public netip.Addr, mac net.HardwareAddr) *vtep {
	v := &vtep{path: path, vni: vni, public: public}
	v.set(mac, nil)
	return v
}

// set makes mac and mac6 (nil: IPv4 only) the VtepMACs in use and builds
// their framing.
func (v *vtep) set(mac, mac6 net.HardwareAddr) {
	fr := encap.NewVXLAN(v.vni, [6]byte(mac))
	if mac6 != nil {
		fr = encap.NewVXLANDual(v.vni, [6]byte(mac), [6]byte(mac6))
	}
	v.mu.Lock()
	v.mac, v.mac6, v.framer = mac, mac6, fr
	v.mu.Unlock()
}

// macs returns the VtepMACs in use (the caller must not modify them).
func (v *vtep) macs() (mac, mac6 net.HardwareAddr) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mac, v.mac6
}

// current returns the IPv4 VtepMAC in use (the caller must not modify it).
func (v *vtep) current() net.HardwareAddr {
	mac, _ := v.macs()
	return mac
}

// framing returns the vxlan framing for the VtepMACs in use.
func (v *vtep) framing() *encap.VXLAN {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.framer
}

func (v *vtep) attrs() lease.Attrs {
	mac, mac6 := v.macs()
	if v.v6only {
		return lease.NewDualVXLANAttrs(v.public, v.public6, v.vni, nil, mac6) // no BackendData, as flanneld
	}
	if mac6 != nil {
		return lease.NewDualVXLANAttrs(v.public, v.public6, v.vni, mac, mac6)
	}
	return lease.NewVXLANAttrs(v.public, v.vni, mac)
}

// collision returns a peer, other than a stale lease of our own public
// address, that publishes our VtepMAC of its family: an IPv4 peer (its
// BackendData) our IPv4 MAC, an IPv6 one (its BackendV6Data) our IPv6 MAC.
// Every frame of that family between us would be dropped as loop_mac at
// both ends. The MACs of different families live on different devices in
// flanneld and in different checks in Decap, so they never collide.
func (v *vtep) collision(peers []router.Peer) (router.Peer, bool) {
	mac, mac6 := v.macs()
	for _, p := range peers {
		a := p.Addr.Addr()
		if a.Is4() && !v.v6only && p.MAC == [6]byte(mac) && a != v.public {
			return p, true
		}
		if a.Is6() && mac6 != nil && p.MAC == [6]byte(mac6) && a != v.public6 {
			return p, true
		}
	}
	return router.Peer{}, false
}

// resolve moves this node off the VtepMAC that peer also publishes (the
// IPv6 one if peer is an IPv6 peer): a new random MAC, stored in that
// MAC's file (kept in memory if that fails), and returned as the attrs to
// publish; the caller hands framing() to the engine. Each side of a
// felt–felt collision may do this at once; both end on fresh random MACs. A
// flanneld peer never changes its MAC, so felt must.
func (v *vtep) resolve(peer router.Peer, log *zap.Logger) (lease.Attrs, error) {
	mac, mac6 := v.macs()
	fresh, err := newMAC()
	if err != nil {
		return lease.Attrs{}, fmt.Errorf("new VtepMAC: %w", err)
	}
	old, path, family := mac, v.path, "IPv4"
	if peer.Addr.Addr().Is6() {
		old, path, family = mac6, v.path+"-v6", "IPv6"
		v.set(mac, fresh)
	} else {
		v.set(fresh, mac6)
	}
	log.Warn("VtepMAC collision: a peer's lease publishes this node's "+family+" VtepMAC, so every vxlan frame of that "+
		"family between the two was dropped (loop_mac); using a new one. Give each node its own VtepMAC files (a shared "+
		"directory or a cloned disk?)",
		zap.Stringer("old", old), zap.Stringer("new", fresh), zap.String("file", path),
		zap.Stringer("peer_subnet", peer.Subnet), zap.Stringer("peer", peer.Addr.Addr()))
	if err := storeMAC(path, fresh); err != nil {
		log.Error("the new VtepMAC is used but not stored; a restart goes back to the old one", zap.Error(err))
	}
	return v.attrs(), nil
}
