package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// The IPv6 side of the agent, with EnableIPv6: what flanneld's vxlan
// backend builds as flannel-v6.<VNI> (its own VtepMAC in BackendV6Data, the
// IPv6 underlay between PublicIPv6 addresses), its ip6tables rules, and
// felt's IPv6 over the udp framing.

// vxlan6Overhead is vxlan over an IPv6 underlay: 14 + 40 + 8 + 8. The kernel
// caps flannel-v6.<VNI>'s MTU at the underlay's less this, while flanneld
// still writes FLANNEL_MTU for the IPv4 overhead; felt routes the IPv6 pool
// into felt0 with this MTU, so the kernel answers larger IPv6 packets with
// Packet Too Big, as it does at flannel-v6.<VNI>.
const vxlan6Overhead = 70

// udp6Extra is what an IPv6 underlay adds to the udp backend's overhead
// (an IPv6 header of 40 bytes instead of IPv4's 20).
const udp6Extra = 20

// resolvePublic6 picks the node's IPv6 underlay address as flanneld does:
// --public-ipv6 if given, else the external interface's first usable IPv6
// address (global before link-local, permanent before autoconfigured,
// non-temporary first; deprecated ones never). felt needs a global one: a
// link-local PublicIPv6 would need a zone no lease can carry.
func resolvePublic6(c *lease.Config, ext extIface, flag netip.Addr) (netip.Addr, error) {
	if !c.EnableIPv6 {
		return netip.Addr{}, nil
	}
	if flag.IsValid() {
		return flag, nil
	}
	l, err := netlink.LinkByName(ext.Name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("EnableIPv6: interface %q: %w", ext.Name, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("EnableIPv6: interface %q: list IPv6 addresses: %w", ext.Name, err)
	}
	type cand struct {
		a     netip.Addr
		flags int
	}
	var cs []cand
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Is4In6() || a.Flags&unix.IFA_F_DEPRECATED != 0 || !ip.IsGlobalUnicast() {
			continue
		}
		cs = append(cs, cand{ip, a.Flags})
	}
	rank := func(c cand) int {
		r := 0
		if c.flags&unix.IFA_F_PERMANENT == 0 {
			r += 2
		}
		if c.flags&unix.IFA_F_TEMPORARY != 0 {
			r++
		}
		return r
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return rank(a) - rank(b) })
	if len(cs) == 0 {
		return netip.Addr{}, fmt.Errorf("EnableIPv6: interface %q has no global IPv6 address: add one or pass --public-ipv6", ext.Name)
	}
	return cs[0].a, nil
}

// setIPv6 adds the IPv6 side to a plane setFraming built: the IPv6 VtepMAC
// (kept in <VtepMACFile>-v6) and both families in the lease value for vxlan,
// PublicIPv6 for udp. It returns the address to listen on: vxlan takes one
// dual-stack socket on [::]:port for both underlays; udp keeps flanneld's
// IPv4 socket and carries IPv6 inner packets over it (felt only). An
// IPv6-only node (v6only: EnableIPv4 false) publishes PublicIP 0.0.0.0 and
// no BackendData, as flanneld does, and both backends take one IPv6 socket
// on [::]:port (IPV6_V6ONLY) for the IPv6 underlay.
func (p *plane) setIPv6(public, public6 netip.Addr, laddr netip.AddrPort, v6only bool, log *zap.Logger) (netip.AddrPort, error) {
	if v6only {
		public = netip.IPv4Unspecified()
	}
	v6laddr := netip.AddrPortFrom(netip.IPv6Unspecified(), p.port)
	switch p.backend {
	case lease.BackendVXLAN:
		mac6, created, err := loadOrCreateMAC(p.vtep.path + "-v6")
		if err != nil {
			return laddr, err
		}
		if created {
			log.Info("new IPv6 VtepMAC", zap.Stringer("mac", mac6), zap.String("file", p.vtep.path+"-v6"))
		}
		p.vtep.public6, p.vtep.v6only = public6, v6only
		p.vtep.public = public
		p.vtep.set(p.vtep.current(), mac6) // the framer with both MACs
		p.framer = p.vtep.framing()
		p.attrs = p.vtep.attrs()
		p.mtu6 = p.mtu + vxlanOverhead - vxlan6Overhead
		p.dual = !v6only
		return v6laddr, nil
	case lease.BackendUDP:
		p.attrs = lease.NewDualUDPAttrs(public, public6)
		if v6only {
			// IPv6 underlay: 40 bytes of IPv6 header where flanneld's udp
			// counts 20 of IPv4, so felt0 and FLANNEL_MTU are the external
			// MTU less 48 (flanneld has no IPv6 udp to match).
			p.mtu -= udp6Extra
			p.framer = encap.NewUDP(p.mtu)
			return v6laddr, nil
		}
		return laddr, nil
	}
	return laddr, fmt.Errorf("EnableIPv6: backend %q: the agent builds no IPv6 data plane for it", p.backend)
}

// listen opens the plane's socket: dual-stack for a dual-stack vxlan node.
func (p *plane) listen(laddr netip.AddrPort, o encap.Options) (*encap.Conn, error) {
	if p.dual {
		return encap.ListenDualStack(laddr.Port(), o)
	}
	return encap.Listen(laddr, o)
}

// peer6Of is the IPv6 route of a peer lease whose IPv4 side peerOf accepted:
// its IPv6 subnet, reached for vxlan at [PublicIPv6]:port with the
// BackendV6Data VtepMAC, for host-gw via PublicIPv6 (a kernel route), for udp at PublicIP:port (felt's IPv6 over the IPv4
// underlay), or at [PublicIPv6]:port in an IPv6-only cluster. ok false with
// a reason when the lease has no usable IPv6 side; its IPv4 side still
// stands (an IPv6-only lease then carries nothing).
func (s *peerSet) peer6Of(l lease.Lease) (p router.Peer, why string, ok bool) {
	if !s.cfg.EnableIPv6 || !l.IPv6Subnet.IsValid() {
		return p, "", false
	}
	a := l.Attrs
	p = router.Peer{Subnet: l.IPv6Subnet, Addr: netip.AddrPortFrom(a.PublicIP, s.port)}
	if t := s.cfg.Backend.Type; t != lease.BackendVXLAN && t != lease.BackendHostGW && s.cfg.EnableIPv4 {
		return p, "", true // udp: felt's IPv6 over the IPv4 underlay
	}
	if !a.PublicIPv6.IsValid() {
		return p, "no PublicIPv6", false
	}
	if s.cfg.Backend.Type != lease.BackendVXLAN {
		return router.Peer{Subnet: l.IPv6Subnet, Addr: netip.AddrPortFrom(a.PublicIPv6, s.port)}, "", true
	}
	_, mac, err := a.VXLAN6()
	if err != nil {
		return p, err.Error(), false
	}
	p.Addr = netip.AddrPortFrom(a.PublicIPv6, s.port)
	copy(p.MAC[:], mac)
	return p, "", true
}

// reacquired6 moves the IPv6 side to a re-acquired lease's IPv6 subnet.
func (n *node) reacquired6(l lease.Lease) {
	if !l.IPv6Subnet.IsValid() {
		return
	}
	n.eng.SetLocal6(l.IPv6Subnet)
	if n.fw6 != nil {
		if err := n.fw6.setSubnet(l.IPv6Subnet); err != nil {
			n.log.Error("move the IPv6 firewall rules to the new subnet", zap.Error(err))
		}
	}
}

// own4 is the IPv4 pool when lease l has an IPv4 subnet, else zero (an
// IPv6-only lease).
func own4(l lease.Lease, network netip.Prefix) netip.Prefix {
	if !l.Subnet.IsValid() {
		return netip.Prefix{}
	}
	return network
}

// own6 is the IPv6 pool when lease l has an IPv6 subnet, else zero.
func own6(l lease.Lease, network netip.Prefix) netip.Prefix {
	if !l.IPv6Subnet.IsValid() {
		return netip.Prefix{}
	}
	return network
}

// withIPv6 adds the lease's IPv6 side to felt0's config: its /128 (as
// flanneld's flannel-v6.<VNI>), the IPv6 pool routed in with the IPv6
// underlay's MTU.
func (s *state) withIPv6(nc *tun.NetConfig, l lease.Lease) {
	if !l.IPv6Subnet.IsValid() {
		return
	}
	nc.Addr6 = netip.PrefixFrom(l.IPv6Subnet.Addr(), 128)
	nc.Network6 = s.netCfg.IPv6Network
	nc.Routes6 = []netip.Prefix{s.netCfg.IPv6Network}
	nc.RouteMTU6 = s.plane.mtu6
}

// findExtIface6 chooses the external interface of an IPv6-only node, which
// may have no IPv4 address at all: --iface (a name, or an IPv6 address it
// holds), else the interface holding --public-ipv6, else the IPv6 default
// route's. --iface-regex and --iface-can-reach match IPv4 addresses in
// flanneld and are refused here. ext.Addr stays zero.
func findExtIface6(c ifaceChoice, public6 netip.Addr) (extIface, error) {
	if len(c.regexes) > 0 || c.canReach != "" {
		return extIface{}, fmt.Errorf("EnableIPv4 false: --iface-regex and --iface-can-reach are not supported on an IPv6-only node; use --iface NAME|IPv6 or --public-ipv6")
	}
	byLink := func(l netlink.Link) extIface {
		return extIface{Name: l.Attrs().Name, MTU: l.Attrs().MTU, Index: l.Attrs().Index}
	}
	holding := func(ip netip.Addr) (extIface, error) {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_V6)
		if err != nil {
			return extIface{}, err
		}
		for _, a := range addrs {
			if got, ok := netip.AddrFromSlice(a.IP); ok && got == ip {
				l, err := netlink.LinkByIndex(a.LinkIndex)
				if err != nil {
					return extIface{}, err
				}
				return byLink(l), nil
			}
		}
		return extIface{}, fmt.Errorf("no interface has address %s", ip)
	}
	for _, want := range c.names {
		if ip, err := netip.ParseAddr(want); err == nil {
			if e, err := holding(ip); err == nil {
				return e, nil
			}
			continue
		}
		if l, err := netlink.LinkByName(want); err == nil {
			return byLink(l), nil
		}
	}
	if len(c.names) > 0 {
		return extIface{}, fmt.Errorf("--iface %v: no interface on this host matches (see `ip -br addr`)", c.names)
	}
	if public6.IsValid() {
		return holding(public6)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V6)
	if err != nil {
		return extIface{}, fmt.Errorf("list IPv6 routes: %w", err)
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "::/0") && r.LinkIndex > 0 {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				return byLink(l), nil
			}
		}
	}
	return extIface{}, errors.New("EnableIPv4 false: no IPv6 default route: pass --iface NAME|IPv6 or --public-ipv6")
}
