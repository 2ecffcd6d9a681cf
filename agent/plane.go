package agent

import (
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
	"github.com/feltnet/felt/wg"
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

// plane is a backend's parts: for udp and vxlan the TUN, the socket and the
// framing; for wireguard wireguard-go's device on the TUN; for all, what the
// lease publishes and subnet.env's MTU.
type plane struct {
	backend string // the config's Backend.Type
	kind    backendKind
	dev     router.Device  // queue 0's TUN queue; nil unless kind is packetBackend
	conn    *encap.Conn    // queue 0's socket
	more    []router.Queue // queues 1.. (--queues): TUN queues and SO_REUSEPORT sockets
	framer  router.Framer
	attrs   lease.Attrs
	mtu     int // TUN MTU
	port    uint16
	vtep    *vtep         // vxlan only: the VtepMAC, which may change at run time
	wg      *wg.Device    // wireguard only: owns the TUN; dev, conn and framer are nil
	link    int           // host-gw: the external interface's index
	ext     *extension    // extension only
	mtu6    int           // MTU of the IPv6 routes into the TUN; 0: the TUN's (ipv6.go)
	dual    bool          // one dual-stack socket for both underlays (ipv6.go)
	linger  time.Duration // the engine's Config.Linger (lingerFor)
}

// newPacketPlane opens the socket and the TUN of udp or vxlan.
func newPacketPlane(c *lease.Config, ext extIface, public netip.Addr, cfg Config, log *zap.Logger) (*plane, error) {
	b := c.Backend
	p := &plane{backend: b.Type, kind: packetBackend, port: uint16(b.UDPPort())}
	laddr, err := p.setFraming(b, ext, public, cfg.VtepMACFile, log)
	if err != nil {
		return nil, err
	}
	if c.EnableIPv6 {
		if laddr, err = p.setIPv6(public, cfg.PublicIPv6, laddr, !c.EnableIPv4, log); err != nil {
			return nil, err
		}
	}
	devs, conns, err := openQueues(laddr, cfg.TUNName, p.mtu, cfg.Queues, log, p.listen, func(err error) error {
		return fmt.Errorf("%s backend: listen on udp %s: %w (another flanneld, felt or vxlan device on this port? stop it or set Backend.Port)", b.Type, laddr, err)
	})
	if err != nil {
		return nil, err
	}
	p.dev, p.conn, p.more = devs[0], conns[0], queuesOf(devs, conns)
	p.linger = lingerFor(len(devs), log)
	return p, nil
}

// setFraming picks the backend's framing, TUN MTU and lease attributes, and
// returns the address to listen on.
func (p *plane) setFraming(b lease.Backend, ext extIface, public netip.Addr, macFile string, log *zap.Logger) (netip.AddrPort, error) {
	switch b.Type {
	case lease.BackendVXLAN:
		under := ext.MTU
		if b.MTU > 0 {
			under = b.MTU
		}
		p.mtu = under - vxlanOverhead
		mac, created, err := loadOrCreateMAC(macFile)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if created {
			log.Info("new VtepMAC", zap.Stringer("mac", mac), zap.String("file", macFile))
		}
		p.vtep = newVTEP(macFile, uint32(b.VNI), public, mac)
		p.framer = p.vtep.framing()
		p.attrs = p.vtep.attrs()
		// The kernel's vxlan socket is wildcard-bound; so is ours.
		return netip.AddrPortFrom(netip.IPv4Unspecified(), p.port), nil
	case lease.BackendUDP:
		p.mtu = ext.MTU - udpOverhead
		p.framer = encap.NewUDP(p.mtu)
		p.attrs = lease.NewUDPAttrs(public)
		// flanneld's udp backend binds to the interface address.
		return netip.AddrPortFrom(ext.Addr, p.port), nil
	}
	// Not reached: kindOf sends only udp and vxlan here.
	return netip.AddrPort{}, fmt.Errorf("backend %q: the agent builds no data plane for it", b.Type)
}

func (p *plane) close() {
	if p.wg != nil {
		p.wg.Close()
	}
	if p.conn != nil {
		p.conn.Close()
	}
	if p.dev != nil {
		p.dev.Close()
	}
	for _, q := range p.more {
		q.Conn.Close()
		q.Device.Close()
	}
}

// listenAddr is the underlay address the backend receives on (packet and
// wireguard backends).
func (p *plane) listenAddr() string {
	if p.conn != nil {
		return p.conn.LocalAddr().String()
	}
	return fmt.Sprintf(":%d", p.port)
}
