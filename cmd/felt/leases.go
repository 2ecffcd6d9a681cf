package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/feltnet/felt/lease"
)

// cmdLeases is `felt leases`: it prints every lease under <prefix>/subnets
// as a table.
func cmdLeases(fs *flag.FlagSet) action {
	ef := addEtcdFlags(fs)
	return func(ctx context.Context, e *env, _ []string) error {
		store, cli, err := openStore(ctx, e, ef)
		if err != nil {
			return err
		}
		defer cli.Close()
		leases, _, err := store.List(ctx, true)
		if err != nil {
			return err
		}
		if err := writeLeases(e.stdout, leases, e.now()); err != nil {
			return err
		}
		if n := store.Malformed(); n > 0 {
			fmt.Fprintf(e.stderr, "felt leases: skipped %d malformed key(s) under %s\n", n, path.Join(ef.prefix, lease.SubnetsDir))
		}
		return nil

	}
}

// writeLeases renders the table, sorted by subnet (IPv4 first, then the
// IPv6-only leases by their IPv6 subnet); the IPv6 columns (subnet,
// PublicIPv6, the BackendV6Data VtepMAC) appear only when some lease has
// an IPv6 subnet. A lease without an IPv4 subnet shows "-" there.
func writeLeases(w io.Writer, leases []lease.Lease, now time.Time) error {
	slices.SortFunc(leases, func(a, b lease.Lease) int { return a.Key().Addr().Compare(b.Key().Addr()) })
	dual := slices.ContainsFunc(leases, func(l lease.Lease) bool { return l.IPv6Subnet.IsValid() })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if dual {
		fmt.Fprintln(tw, "SUBNET\tIPV6 SUBNET\tPUBLIC IP\tPUBLIC IPV6\tBACKEND\tVTEP MAC\tVTEP MAC V6\tEXPIRES IN")
	} else {
		fmt.Fprintln(tw, "SUBNET\tPUBLIC IP\tBACKEND\tVTEP MAC\tEXPIRES IN")
	}
	for _, l := range leases {
		a := l.Attrs
		if !dual {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Subnet, a.PublicIP, backendName(a), vtepMAC(a), expiresIn(l.Expiration, now))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			orDash(l.Subnet.IsValid(), l.Subnet.String()), orDash(l.IPv6Subnet.IsValid(), l.IPv6Subnet.String()),
			a.PublicIP, orDash(a.PublicIPv6.IsValid(), a.PublicIPv6.String()), backendName(a),
			orDash(len(a.BackendData) > 0 || a.BackendType != lease.BackendVXLAN, vtepMAC(a)), vtepMAC6(a), expiresIn(l.Expiration, now))
	}
	return tw.Flush()
}

// vtepMAC6 is the flannel-v6.<VNI> MAC of a vxlan lease's BackendV6Data.
func vtepMAC6(a lease.Attrs) string {
	if a.BackendType != lease.BackendVXLAN || len(a.BackendV6Data) == 0 {
		return "-"
	}
	_, mac, err := a.VXLAN6()
	if err != nil {
		return "invalid"
	}
	return mac.String()
}

// backendName shows flanneld's udp leases, which carry no BackendType.
func backendName(a lease.Attrs) string {
	if a.BackendType == "" {
		return lease.BackendUDP
	}
	return a.BackendType
}

func vtepMAC(a lease.Attrs) string {
	if a.BackendType != lease.BackendVXLAN {
		return "-"
	}
	_, mac, err := a.VXLAN()
	if err != nil {
		return "invalid"
	}
	return mac.String()
}

// expiresIn is the time left, to the second; a key without an etcd lease (a
// reservation) never expires.
func expiresIn(exp, now time.Time) string {
	if exp.IsZero() {
		return "never"
	}
	left := exp.Sub(now).Round(time.Second)
	if left <= 0 {
		return "expired"
	}
	return left.String()
}

func orDash(ok bool, s string) string {
	if !ok {
		return "-"
	}
	return s
}
