package demo

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"

	"github.com/feltnet/felt/netns"
)

// bridgeName is the host's container bridge. Each host has its own
// namespace, so it can carry Docker's name.
const bridgeName = "docker0"

// containersPerHost is two, as in flannel's tutorials: one pair on the same
// bridge, and partners on every other host.
const containersPerHost = 2

// container is a "container": a namespace behind its host's bridge.
type container struct {
	short string // "h0/c1"
	ns    *netns.Host
	addr  netip.Addr
	addr6 netip.Addr // from FLANNEL_IPV6_SUBNET; zero without IPv6
}

// addUnderlay6 gives the host its IPv6 underlay address (the i+1st of
// underlay6, without DAD so it is usable at once) and IPv6 forwarding.
func (n *node) addUnderlay6(ctx context.Context, underlay6 netip.Prefix, i int) error {
	a := underlay6.Addr()
	for range i + 1 {
		a = a.Next()
	}
	if err := ip(ctx, "-n", n.host.Name, "addr", "add", netip.PrefixFrom(a, underlay6.Bits()).String(), "dev", n.host.Iface, "nodad"); err != nil {
		return err
	}
	n.addr6 = a
	return n.host.Sysctl("net.ipv6.conf.all.forwarding", "1")
}

// buildContainers does what Docker does with --bip=$FLANNEL_SUBNET
// --mtu=$FLANNEL_MTU: a bridge with the subnet's first address and the
// overlay MTU, and containers on it with the next addresses, the same MTU
// and a default route via the bridge.
func (n *node) buildContainers(ctx context.Context) error {
	bip := n.env.Subnet.Addr().Next() // FLANNEL_SUBNET is written as the first address
	bipPrefix := netip.PrefixFrom(bip, n.env.Subnet.Bits())
	mtu := strconv.Itoa(n.env.MTU)
	h := n.host.Name
	for _, args := range [][]string{
		{"-n", h, "link", "add", bridgeName, "mtu", mtu, "type", "bridge"},
		{"-n", h, "addr", "add", bipPrefix.String(), "dev", bridgeName},
		{"-n", h, "link", "set", bridgeName, "up"},
	} {
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	// FLANNEL_IPV6_SUBNET likewise: its first address on the bridge.
	var bip6 netip.Addr
	if n.env.IPv6Subnet.IsValid() {
		bip6 = n.env.IPv6Subnet.Addr().Next()
		if err := ip(ctx, "-n", h, "addr", "add", netip.PrefixFrom(bip6, n.env.IPv6Subnet.Bits()).String(), "dev", bridgeName, "nodad"); err != nil {
			return err
		}
	}
	addr6 := bip6
	addr := bip
	for i := 1; i <= containersPerHost; i++ {
		addr = addr.Next()
		name := "c" + strconv.Itoa(i)
		ns, err := n.host.AddContainer(ctx, name, bridgeName, netip.PrefixFrom(addr, n.env.Subnet.Bits()), bip)
		if err != nil {
			return err
		}
		// Docker's --mtu: the container's interface and its bridge port.
		if err := ip(ctx, "-n", h, "link", "set", "v"+name, "mtu", mtu); err != nil {
			return err
		}
		if err := ip(ctx, "-n", ns.Name, "link", "set", ns.Iface, "mtu", mtu); err != nil {
			return err
		}
		ct := &container{short: n.short + "/" + name, ns: ns, addr: addr}
		if bip6.IsValid() {
			addr6 = addr6.Next()
			ct.addr6 = addr6
			for _, args := range [][]string{
				{"-n", ns.Name, "addr", "add", netip.PrefixFrom(addr6, n.env.IPv6Subnet.Bits()).String(), "dev", ns.Iface, "nodad"},
				{"-n", ns.Name, "-6", "route", "add", "default", "via", bip6.String()},
			} {
				if err := ip(ctx, args...); err != nil {
					return err
				}
			}
		}
		n.ctrs = append(n.ctrs, ct)
	}
	return nil
}

// ip runs an iproute2 command; the error shows the command and its output.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %v: %w: %s", args, err, out)
	}
	return nil
}
