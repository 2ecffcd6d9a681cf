package agent

import (
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// Encapsulation overheads, as flanneld: vxlan adds 14 Ethernet + 20 IP +
// 8 UDP + 8 VXLAN; udp adds 20 IP + 8 UDP.
const (
	vxlanOverhead = 50
	udpOverhead   = 28
)

// felt's TUN device is what the router reads and writes, and it reports
// the packets it drops itself.
var (
	_ router.Device      = (*tun.Device)(nil)
	_ router.DeviceDrops = (*tun.Device)(nil)
)

// plane is the packet path's parts for one backend: the TUN, the socket and
// the framing, plus what the lease publishes about them.
type plane struct {
	backend string
	dev     router.Device
	conn    *encap.Conn
	framer  router.Framer
	attrs   lease.Attrs
	mtu     int // TUN MTU
	port    uint16
	mac     []byte // vxlan VtepMAC
}

// newPlane opens the socket and the TUN before a lease is taken, as flanneld
// creates its device first: a port in use or a missing TUN permission is
// reported before anything is written to etcd.
func newPlane(c *lease.Config, ext extIface, public netip.Addr, cfg Config, log *zap.Logger) (*plane, error) {
	b := c.Backend
	p := &plane{backend: b.Type, port: uint16(b.UDPPort())}
	var laddr netip.AddrPort
	switch b.Type {
	case "vxlan":
		under := ext.MTU
		if b.MTU > 0 {
			under = b.MTU
		}
		p.mtu = under - vxlanOverhead
		mac, created, err := loadOrCreateMAC(cfg.VtepMACFile)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("new VtepMAC", zap.Stringer("mac", mac), zap.String("file", cfg.VtepMACFile))
		}
		p.mac = mac
		var m [6]byte
		copy(m[:], mac)
		p.framer = encap.NewVXLAN(uint32(b.VNI), m)
		p.attrs = lease.NewVXLANAttrs(public, uint32(b.VNI), mac)
		// The kernel's vxlan socket is wildcard-bound; so is ours.
		laddr = netip.AddrPortFrom(netip.IPv4Unspecified(), p.port)
	case "udp":
		p.mtu = ext.MTU - udpOverhead
		p.framer = encap.NewUDP(p.mtu)
		p.attrs = lease.NewUDPAttrs(public)
		// flanneld's udp backend binds to the interface address.
		laddr = netip.AddrPortFrom(ext.Addr, p.port)
	default:
		return nil, fmt.Errorf("backend %q: felt speaks udp and vxlan", b.Type)
	}
	o := encap.DefaultOptions()
	o.Logger = log.Named("udp")
	conn, err := encap.Listen(laddr, o)
	if err != nil {
		return nil, fmt.Errorf("%s backend: listen on udp %s: %w (another flanneld, felt or vxlan device on this port? stop it or set Backend.Port)", b.Type, laddr, err)
	}
	p.conn = conn
	to := tun.DefaultOptions()
	to.Logger = log.Named("tun") // says which I/O path the TUN took
	dev, err := tun.CreateWith(cfg.TUNName, p.mtu, to)
	if err != nil {
		conn.Close()
		return nil, err
	}
	p.dev = dev
	return p, nil
}

func (p *plane) close() {
	if p.conn != nil {
		p.conn.Close()
	}
	if p.dev != nil {
		p.dev.Close()
	}
}
