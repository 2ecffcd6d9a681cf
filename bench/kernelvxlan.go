package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/feltnet/felt/netns"
)

// The kernel VXLAN scenario is flanneld's vxlan backend done by hand, as
// docs/flannel-compat.md §3 describes it: a flannel.1 device (VNI 1, port
// 8472, no learning, MTU = underlay − 50) with <subnet>.0/32 on it, and per
// peer one permanent neighbour, one permanent FDB entry and one onlink route.
const (
	vxlanDev    = "flannel.1"
	vxlanMTU    = 1500 - 50
	kernelNetOf = "10.7.%d.0" // host i has 10.7.(i+1).0/24
)

// vxlanType is the link type kernel-vxlan and the vxlan probe create. Tests
// set it to a type no kernel has, to run the suite as on a kernel without
// vxlan.
var vxlanType = "vxlan"

func kernelSubnet(i int) netip.Prefix {
	return netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf(kernelNetOf, i+1)), 24)
}

// kernelMAC is host i's VtepMAC: locally administered, unicast, fixed, so
// that a rerun needs no lease exchange.
func kernelMAC(i int) string { return fmt.Sprintf("02:fb:00:00:00:%02x", i+1) }

// kernelVXLAN is one of flanneld's vxlan devices done by hand: flannel.1
// over the IPv4 underlay (kernel-vxlan) or flannel-v6.1 over the IPv6 one
// (kernel-vxlan6, v6).
type kernelVXLAN struct {
	dev    string
	mtu    int
	v6     bool
	subnet func(i int) netip.Prefix // host i's; its device holds the first address
	mac    func(i int) string       // host i's VtepMAC
}

var kernelVXLAN4 = kernelVXLAN{dev: vxlanDev, mtu: vxlanMTU, subnet: kernelSubnet, mac: kernelMAC}

// kernelVXLANOf is the device a kernel-vxlan scenario (sc) builds.
func kernelVXLANOf(sc Scenario) kernelVXLAN {
	if sc.ipv6() {
		return kernelVXLAN6
	}
	return kernelVXLAN4
}

// underlay is hosts[i]'s underlay address of k's family.
func (k kernelVXLAN) underlay(hosts []*netns.Host, i int) netip.Addr {
	if k.v6 {
		return underlay6(i)
	}
	return hosts[i].Addr
}

// cmds are the commands that build host i's device with its peers'
// neighbours, FDB entries and routes. IPv6 addresses are added nodad, so
// that they are usable at once.
func (k kernelVXLAN) cmds(hosts []*netns.Host, i int) [][]string {
	ip := []string{"ip"}
	gwAddr := k.subnet(i).Addr()
	addr := []string{"ip", "addr", "add", netip.PrefixFrom(gwAddr, gwAddr.BitLen()).String(), "dev", k.dev}
	if k.v6 {
		ip = []string{"ip", "-6"}
		addr = append(addr, "nodad")
	}
	cmds := [][]string{
		{"ip", "link", "add", k.dev, "address", k.mac(i), "mtu", fmt.Sprint(k.mtu), "type", vxlanType,
			"id", "1", "local", k.underlay(hosts, i).String(), "dev", hosts[i].Iface, "dstport", "8472", "nolearning"},
		addr,
		{"ip", "link", "set", k.dev, "up"},
	}
	for j := range hosts {
		if j == i {
			continue
		}
		gw := k.subnet(j).Addr().String()
		cmds = append(cmds,
			append(slices.Clone(ip), "neigh", "replace", gw, "lladdr", k.mac(j), "dev", k.dev, "nud", "permanent"),
			[]string{"bridge", "fdb", "append", k.mac(j), "dev", k.dev, "dst", k.underlay(hosts, j).String(), "self", "permanent"},
			append(slices.Clone(ip), "route", "replace", k.subnet(j).String(), "via", gw, "dev", k.dev, "onlink"),
		)
	}
	return cmds
}

// up programs both hosts and returns the server's overlay address.
func (k kernelVXLAN) up(ctx context.Context, hosts []*netns.Host) (netip.Addr, error) {
	for i, h := range hosts {
		for _, c := range k.cmds(hosts, i) {
			if err := runIn(ctx, h, c[0], c[1:]...); err != nil {
				return netip.Addr{}, errors.Join(err, k.down(ctx, hosts))
			}
		}
	}
	return k.subnet(1).Addr(), nil
}

// down deletes the device (and with it its routes, neighbours and FDB
// entries) in every host.
func (k kernelVXLAN) down(ctx context.Context, hosts []*netns.Host) error {
	var errs []error
	for _, h := range hosts {
		errs = append(errs, delLink(ctx, h, k.dev))
	}
	return errors.Join(errs...)
}

// delLink deletes dev in h; a device already gone is no error.
func delLink(ctx context.Context, h *netns.Host, dev string) error {
	err := runIn(ctx, h, "ip", "link", "del", dev)
	if err != nil && strings.Contains(err.Error(), "Cannot find device") {
		return nil
	}
	return err
}

// runIn runs a setup command in h; its error shows the command and output.
func runIn(ctx context.Context, h *netns.Host, name string, args ...string) error {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
