package bench

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/feltnet/felt/bench/internal/rr"
	"github.com/feltnet/felt/netns"
)

// The IPv6 scenarios' lab: each host's underlay interface also holds
// fd99::<i+1>/64 (added nodad, so it is usable at once), both hosts forward
// both families, and the server host runs a second request/response server
// on [::]:rrPort6 (a port of its own, so that it does not contend with the
// IPv4 one on 0.0.0.0:rrPort). The iperf3 server of each scenario is bound
// to the scenario's address, of either family (measure.go).
const (
	// The kernel IPv6 vxlan scenario is flanneld's v6 device done by hand:
	// flannel-v6.1 (VNI 1, port 8472, no learning, local = the host's IPv6
	// underlay address) with <subnet>::/128 on it, and per peer one
	// permanent neighbour, one permanent FDB entry (dst = the peer's IPv6
	// underlay address) and one onlink route. Its MTU is underlay − 70:
	// the kernel caps a vxlan device over IPv6 there (40 B more header).
	vxlan6Dev    = "flannel-v6.1"
	vxlan6MTU    = 1500 - 70
	kernelNet6Of = "fd07:%x::" // host i has fd07:(i+1)::/64
)

// underlay6 is host i's IPv6 underlay address.
func underlay6(i int) netip.Addr { return netip.AddrFrom16([16]byte{0xfd, 0x99, 15: byte(i + 1)}) }

// hasIPv6 says whether any of scs needs the lab's IPv6 underlay.
func hasIPv6(scs []Scenario) bool {
	for _, sc := range scs {
		if sc.ipv6() {
			return true
		}
	}
	return false
}

// ipv6Up gives the lab's hosts their IPv6 underlay addresses, turns
// forwarding on for both families (new namespaces start with it off) and
// starts the IPv6 request/response server. The lab's close undoes it (the
// namespaces go, and l.rr6 is closed).
func (l *underlayLab) ipv6Up(ctx context.Context) error {
	for i, h := range []*netns.Host{l.client, l.server} {
		if err := runIn(ctx, h, "ip", "addr", "add", netip.PrefixFrom(underlay6(i), 64).String(), "dev", h.Iface, "nodad"); err != nil {
			return fmt.Errorf("%s lab: IPv6 underlay: %w", l.u, err)
		}
		for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
			if err := h.Sysctl(k, "1"); err != nil {
				return fmt.Errorf("%s lab: %s in %s: %w", l.u, k, h.Name, err)
			}
		}
	}
	if err := l.server.Do(func() (err error) {
		l.rr6, err = rr.Listen(netip.AddrPortFrom(netip.IPv6Unspecified(), rrPort6))
		return err
	}); err != nil {
		return fmt.Errorf("%s lab: IPv6 request/response server: %w", l.u, err)
	}
	return nil
}

// rrAddr is the lab's request/response server for dst's family.
func rrAddr(dst netip.Addr) netip.AddrPort {
	if dst.Is6() && !dst.Is4In6() {
		return netip.AddrPortFrom(dst, rrPort6)
	}
	return netip.AddrPortFrom(dst, rrPort)
}

func kernelSubnet6(i int) netip.Prefix {
	return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf(kernelNet6Of, i+1)), 64)
}

// kernelMAC6 is host i's v6 VtepMAC (flanneld gives the v6 device a MAC of
// its own, BackendV6Data.VtepMAC).
func kernelMAC6(i int) string { return fmt.Sprintf("02:fb:00:00:06:%02x", i+1) }

var kernelVXLAN6 = kernelVXLAN{dev: vxlan6Dev, mtu: vxlan6MTU, v6: true, subnet: kernelSubnet6, mac: kernelMAC6}
