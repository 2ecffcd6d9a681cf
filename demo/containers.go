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
		n.ctrs = append(n.ctrs, &container{short: n.short + "/" + name, ns: ns, addr: addr})
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
