package demo

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/feltnet/felt/netns"
)

// printTable prints hosts, subnets and containers, then the ping matrix.
func printTable(w io.Writer, nodes []*node, pings []PingResult) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	dual := len(nodes) > 0 && nodes[0].env.IPv6Subnet.IsValid()
	if dual {
		fmt.Fprintln(tw, "HOST\tNAMESPACE\tUNDERLAY\tUNDERLAY IPV6\tFLANNEL_SUBNET\tFLANNEL_IPV6_SUBNET\tMTU\tTUN\tCONTAINERS")
	} else {
		fmt.Fprintln(tw, "HOST\tNAMESPACE\tUNDERLAY\tFLANNEL_SUBNET\tMTU\tTUN\tCONTAINERS")
	}
	for _, n := range nodes {
		var cs []string
		for _, c := range n.ctrs {
			a := c.addr.String()
			if c.addr6.IsValid() {
				a += " " + c.addr6.String()
			}
			cs = append(cs, c.short+" "+a)
		}
		tun := n.tun
		if tun == "" {
			tun = "-" // host-gw: kernel routes only
		}
		sn := netip.PrefixFrom(n.env.Subnet.Addr().Next(), n.env.Subnet.Bits())
		if dual {
			sn6 := netip.PrefixFrom(n.env.IPv6Subnet.Addr().Next(), n.env.IPv6Subnet.Bits())
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.short, n.host.Name, n.host.Addr, n.addr6,
				sn, sn6, n.env.MTU, tun, strings.Join(cs, ", "))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.short, n.host.Name, n.host.Addr,
			sn, n.env.MTU, tun, strings.Join(cs, ", "))
	}
	tw.Flush()

	// Matrix: rows ping columns; "-" is the same host (not tested).
	res := map[[2]string]error{}
	for _, p := range pings {
		k := [2]string{p.From, p.To}
		if err, seen := res[k]; !seen || err == nil { // a pair is ok only if both families are
			res[k] = p.Err
		}
	}
	var all []*container
	for _, n := range nodes {
		all = append(all, n.ctrs...)
	}
	if dual {
		fmt.Fprintln(w, "\nping (row → column), every container pair across hosts, IPv4 and IPv6 (ok: both answered):")
	} else {
		fmt.Fprintln(w, "\nping (row → column), every container pair across hosts:")
	}
	fmt.Fprint(tw, "\t")
	for _, c := range all {
		fmt.Fprintf(tw, "%s\t", c.short)
	}
	fmt.Fprintln(tw)
	for _, a := range all {
		fmt.Fprintf(tw, "%s\t", a.short)
		for _, b := range all {
			err, tested := res[[2]string{a.short, b.short}]
			switch {
			case !tested:
				fmt.Fprint(tw, "-\t")
			case err != nil:
				fmt.Fprint(tw, "FAIL\t")
			default:
				fmt.Fprint(tw, "ok\t")
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// printPath prints the path of one packet from src to dst as the kernels
// and agents on the way route it right now (ip route get, agent /status).
func printPath(ctx context.Context, w io.Writer, c Config, src, dst *node, st agentStatus) {
	from, to := src.ctrs[0], dst.ctrs[0]
	peer, path := "?", ""
	for _, p := range st.Peers {
		if sn, err := netip.ParsePrefix(p.Subnet); err == nil && sn.Contains(to.addr) {
			peer, path = p.Addr, p.Path // the peer's underlay address (and port)
		}
	}
	if path == "direct" {
		fmt.Fprintf(w, "\none packet, %s (%s) → %s (%s):\n", from.short, from.addr, to.short, to.addr)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  1. %s\t%s\tcontainer's default route to the bridge (docker0)\n", from.short, routeGet(ctx, from.ns, to.addr))
		fmt.Fprintf(tw, "  2. %s\t%s\tip_forward; the agent's kernel route to %s via its PublicIP (no TUN, no encapsulation)\n",
			src.short, routeGet(ctx, src.host, to.addr), dst.env.Subnet)
		fmt.Fprintf(tw, "  3. underlay\t%s → %s\tthe packet as it is, over eth0 and the lab bridge (%s)\n", src.host.Addr, dst.host.Addr, c.Underlay)
		fmt.Fprintf(tw, "  4. %s\t%s\tthe kernel delivers it on the bridge to %s\n", dst.short, routeGet(ctx, dst.host, to.addr), to.short)
		tw.Flush()
		return
	}
	port, frame := "8285", "flannel udp: the IP packet as the UDP payload"
	switch c.Backend {
	case "vxlan":
		port, frame = "8472", "flannel vxlan: VNI 1, an Ethernet frame between the hosts' VtepMACs"
	case "wireguard":
		port, frame = "51820", "flannel wireguard: the IP packet encrypted by wireguard-go for the peer's public key"
	}
	peerAddr := peer
	if ap, err := netip.ParseAddrPort(peer); err == nil {
		port, peerAddr = strconv.Itoa(int(ap.Port())), ap.Addr().String()
	}
	fmt.Fprintf(w, "\none packet, %s (%s) → %s (%s):\n", from.short, from.addr, to.short, to.addr)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  1. %s\t%s\tcontainer's default route to the bridge (docker0)\n", from.short, routeGet(ctx, from.ns, to.addr))
	fmt.Fprintf(tw, "  2. %s\t%s\tip_forward; the overlay route goes to the agent's TUN\n", src.short, routeGet(ctx, src.host, to.addr))
	fmt.Fprintf(tw, "  3. %s felt agent\t%s leased by %s\tread from %s, framed (%s)\n", src.short, dst.env.Subnet, peerAddr, src.tun, frame)
	fmt.Fprintf(tw, "  4. underlay\tudp %s → %s\tover eth0 and the lab bridge (%s)\n", src.host.Addr, peer, c.Underlay)
	accept := "known peer, inner source inside its subnet: written to the TUN"
	if c.Backend == "wireguard" {
		accept = "decrypted; the sender's key owns the inner source (AllowedIPs): written to the TUN"
	}
	fmt.Fprintf(tw, "  5. %s felt agent\tudp :%s → %s\t%s\n", dst.short, port, dst.tun, accept)
	fmt.Fprintf(tw, "  6. %s\t%s\tthe kernel delivers it on the bridge to %s\n", dst.short, routeGet(ctx, dst.host, to.addr), to.short)
	tw.Flush()
}

// routeGet is what `ip route get` says about dst in ns: "dev X" or "via Y
// dev X".
func routeGet(ctx context.Context, ns *netns.Host, dst netip.Addr) string {
	out, err := exec.CommandContext(ctx, "ip", "-n", ns.Name, "-o", "route", "get", dst.String()).Output()
	if err != nil {
		return "route get failed: " + err.Error()
	}
	f := strings.Fields(string(out))
	var parts []string
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" || f[i] == "dev" {
			parts = append(parts, f[i]+" "+f[i+1])
		}
	}
	return "route " + dst.String() + ": " + strings.Join(parts, " ")
}
