package wg

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/feltnet/felt/tun"
)

// Config is a device's own settings: flanneld's wireguard backend config
// and the key.
type Config struct {
	PrivateKey Key
	ListenPort uint16 // on every address, as the kernel's wireguard listens
	PSK        *Key   // for every peer; nil = none
	Keepalive  uint16 // seconds of persistent keepalive for every peer; 0 = off
}

// Peer is one remote node: its key, where to send, what it owns.
type Peer struct {
	PublicKey  Key
	Endpoint   netip.AddrPort
	AllowedIPs []netip.Prefix // the peer's lease subnet(s)
}

func (p Peer) equal(o Peer) bool {
	return p.PublicKey == o.PublicKey && p.Endpoint == o.Endpoint && slices.Equal(p.AllowedIPs, o.AllowedIPs)
}

// Device is wireguard-go's device on a felt TUN.
type Device struct {
	cfg  Config
	dev  *device.Device
	tun  *tunDevice
	name string

	mu    sync.Mutex // serialises SetPeers; guards peers
	peers map[Key]Peer
}

// maxGSO bounds the super-packets the kernel hands the TUN. felt's Read
// wants buffers of offset+65535 bytes; wireguard-go's are
// device.MaxMessageSize (65535) read at offset
// device.MessageTransportHeaderSize (16), so a frame (virtio header +
// packet) must fit in 65535-16+VirtioHdrLen bytes. With gso_max_size at
// 65519 the kernel segments larger GSO packets (a 65,507-byte UDP GSO send)
// itself; without it their last bytes are cut off (TestWireGuardUDPGSO).
const maxGSO = device.MaxMessageSize - device.MessageTransportHeaderSize

// New runs wireguard-go's device on d, listening on cfg.ListenPort, with no
// peers. It owns d from then on: Close closes it, and so does a failing New.
func New(d *tun.Device, cfg Config, log *zap.Logger) (*Device, error) {
	if link, err := netlink.LinkByName(d.Name()); err == nil {
		if err := netlink.LinkSetGSOMaxSize(link, maxGSO); err != nil {
			log.Warn("TUN gso_max_size not capped: UDP GSO sends of more than 65,491 bytes lose their last bytes", zap.Error(err))
		}
	}
	sugar := log.Sugar()
	logger := &device.Logger{Verbosef: sugar.Debugf, Errorf: sugar.Warnf}
	td := newTUNDevice(d)
	dev := device.NewDevice(td, conn.NewStdNetBind(), logger)
	w := &Device{cfg: cfg, dev: dev, tun: td, name: d.Name(), peers: map[Key]Peer{}}
	conf := fmt.Sprintf("private_key=%s\nlisten_port=%d\nreplace_peers=true\n", hexKey(cfg.PrivateKey), cfg.ListenPort)
	if err := dev.IpcSet(conf); err != nil {
		dev.Close()
		return nil, fmt.Errorf("wireguard: configure %s: %w", d.Name(), err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("wireguard: listen on udp port %d: %w (another flanneld, felt or wireguard on this port? stop it or set Backend.ListenPort)",
			cfg.ListenPort, err)
	}
	return w, nil
}

// PublicKey is the device's public key, as its lease publishes it.
func (w *Device) PublicKey() Key { return w.cfg.PrivateKey.PublicKey() }

// Done is closed when the device has stopped: after Close, or when
// wireguard-go stopped it itself (the TUN failed).
func (w *Device) Done() <-chan struct{} { return w.dev.Wait() }

// Close stops the device and closes its TUN and sockets.
func (w *Device) Close() { w.dev.Close() }

// SetPeers makes the device's peers equal to peers: it removes those no
// longer there, and adds or reconfigures those new or changed, in one
// configuration transaction; unchanged peers (and their sessions) stay.
// Every peer must have a distinct key other than the device's own.
func (w *Device) SetPeers(peers []Peer) error {
	own := w.PublicKey()
	want := make(map[Key]Peer, len(peers))
	for _, p := range peers {
		if p.PublicKey == own {
			return fmt.Errorf("wireguard: peer %s for %v: is this node's own public key", p.PublicKey, p.AllowedIPs)
		}
		if q, dup := want[p.PublicKey]; dup {
			return fmt.Errorf("wireguard: peer %s: given for both %v and %v", p.PublicKey, q.AllowedIPs, p.AllowedIPs)
		}
		if !p.Endpoint.IsValid() || p.Endpoint.Port() == 0 {
			return fmt.Errorf("wireguard: peer %s endpoint %s: must be an address and a port", p.PublicKey, p.Endpoint)
		}
		want[p.PublicKey] = p
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for k := range w.peers {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", hexKey(k))
		}
	}
	for k, p := range want {
		if old, ok := w.peers[k]; ok && old.equal(p) {
			continue
		}
		fmt.Fprintf(&b, "public_key=%s\n", hexKey(k))
		if w.cfg.PSK != nil {
			fmt.Fprintf(&b, "preshared_key=%s\n", hexKey(*w.cfg.PSK))
		}
		fmt.Fprintf(&b, "endpoint=%s\npersistent_keepalive_interval=%d\nreplace_allowed_ips=true\n", p.Endpoint, w.cfg.Keepalive)
		for _, a := range p.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a.Masked())
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := w.dev.IpcSet(b.String()); err != nil {
		return fmt.Errorf("wireguard: set peers on %s: %w", w.name, err)
	}
	w.peers = want
	return nil
}

func hexKey(k Key) string { return hex.EncodeToString(k[:]) }
