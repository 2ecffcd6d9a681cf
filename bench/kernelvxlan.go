package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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

// kernelVXLANUp programs both hosts and returns the server's overlay address.
func kernelVXLANUp(ctx context.Context, hosts []*netns.Host) (netip.Addr, error) {
	for i, h := range hosts {
		cmds := [][]string{
			{"ip", "link", "add", vxlanDev, "address", kernelMAC(i), "mtu", fmt.Sprint(vxlanMTU), "type", vxlanType,
				"id", "1", "local", h.Addr.String(), "dev", h.Iface, "dstport", "8472", "nolearning"},
			{"ip", "addr", "add", netip.PrefixFrom(kernelSubnet(i).Addr(), 32).String(), "dev", vxlanDev},
			{"ip", "link", "set", vxlanDev, "up"},
		}
		for j, peer := range hosts {
			if j == i {
				continue
			}
			gw := kernelSubnet(j).Addr().String()
			cmds = append(cmds,
				[]string{"ip", "neigh", "replace", gw, "lladdr", kernelMAC(j), "dev", vxlanDev, "nud", "permanent"},
				[]string{"bridge", "fdb", "append", kernelMAC(j), "dev", vxlanDev, "dst", peer.Addr.String(), "self", "permanent"},
				[]string{"ip", "route", "replace", kernelSubnet(j).String(), "via", gw, "dev", vxlanDev, "onlink"},
			)
		}
		for _, c := range cmds {
			if err := runIn(ctx, h, c[0], c[1:]...); err != nil {
				return netip.Addr{}, errors.Join(err, kernelVXLANDown(ctx, hosts))
			}
		}
	}
	return kernelSubnet(1).Addr(), nil
}

// kernelVXLANDown deletes flannel.1 (and with it its routes, neighbours and
// FDB entries) in every host; a device already gone is no error.
func kernelVXLANDown(ctx context.Context, hosts []*netns.Host) error {
	var errs []error
	for _, h := range hosts {
		err := runIn(ctx, h, "ip", "link", "del", vxlanDev)
		if err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runIn runs a setup command in h; its error shows the command and output.
func runIn(ctx context.Context, h *netns.Host, name string, args ...string) error {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
