package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/feltnet/felt/agent"
)

func cmdStatus(fs *flag.FlagSet) action {
	ip := fs.String("healthz-ip", "127.0.0.1", "address the agent's health server listens on")
	port := fs.Int("healthz-port", 0, "the agent's --healthz-port")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	return func(ctx context.Context, e *env, _ []string) error {
		if *port <= 0 || *port > 65535 {
			return usageErr("--healthz-port %d: give the port the agent was started with (felt agent --healthz-port N)", *port)
		}
		addr, err := netip.ParseAddr(*ip)
		if err != nil {
			return usageErr("--healthz-ip %q: not an IP address", *ip)
		}
		if addr.IsUnspecified() {
			addr = netip.MustParseAddr("127.0.0.1")
		}
		url := "http://" + netip.AddrPortFrom(addr, uint16(*port)).String() + "/status"
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("no agent answers at %s: %w (is `felt agent --healthz-port %d` running on this host?)", url, err, *port)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := e.stdout.Write(body)
			return err
		}
		var st agent.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("%s: not an agent status: %w", url, err)
		}
		w := e.stdout
		if st.Subnet != "" { // none on an IPv6-only node
			fmt.Fprintf(w, "subnet %s  public-ip %s  ", st.Subnet, st.PublicIP)
		}
		if st.IPv6Subnet != "" {
			fmt.Fprintf(w, "ipv6-subnet %s  public-ipv6 %s  ", st.IPv6Subnet, st.PublicIPv6)
		}
		fmt.Fprintf(w, "backend %s", st.Backend)
		if st.TUN != "" {
			fmt.Fprintf(w, "  tun %s (mtu %d)", st.TUN, st.MTU)
		} else {
			fmt.Fprintf(w, "  mtu %d (no TUN)", st.MTU)
		}
		if st.VtepMAC != "" {
			fmt.Fprintf(w, "  vtep-mac %s", st.VtepMAC)
		}
		if st.VtepMACv6 != "" {
			fmt.Fprintf(w, "  vtep-mac-v6 %s", st.VtepMACv6)
		}
		fmt.Fprintf(w, "\nlease expires in %s\n\npeers (%d):\n", st.Expires.Sub(st.Timestamp).Round(time.Second), len(st.Peers))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range st.Peers {
			if p.PublicKey == "" {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Subnet, p.Path, p.Addr, p.MAC)
				continue
			}
			hs := "no handshake"
			if p.LastHandshake != nil {
				hs = "handshake " + st.Timestamp.Sub(*p.LastHandshake).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\tkey %s\t%s\trx %d B\ttx %d B\n", p.Subnet, p.Path, p.Addr, p.PublicKey, hs, p.RxBytes, p.TxBytes)
		}
		tw.Flush()
		if len(st.Rejected) > 0 {
			fmt.Fprintf(w, "\nrejected leases (%d):\n", len(st.Rejected))
			for _, r := range st.Rejected {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.Subnet, r.PublicIP, r.Rule, r.Reason)
			}
			tw.Flush()
		}
		fmt.Fprintln(w, "\ncounters:")
		keys := make([]string, 0, len(st.Counters))
		for k := range st.Counters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%d\n", k, st.Counters[k])
		}
		return tw.Flush()

	}
}
