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
	tunBatch      = 128 // packets per TUN read batch
	vxlanOverhead = 50
	udpOverhead   = 28
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
	vtep    *vtep // vxlan only: the VtepMAC, which may change at run time
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
		p.vtep = newVTEP(cfg.VtepMACFile, uint32(b.VNI), public, mac)
		p.framer = &p.vtep.framer
		p.attrs = p.vtep.attrs()
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
	dev, err := tun.Create(cfg.TUNName, p.mtu)
	if err != nil {
		conn.Close()
		return nil, err
	}
	// Batched reads every queued frame per wake-up and splits super-packets
	// itself; writes still go through wireguard's GRO.
	bdev, err := tun.NewBatched(dev, tunBatch)
	if err != nil {
		dev.Close()
		conn.Close()
		return nil, err
	}
	p.dev = bdev
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
