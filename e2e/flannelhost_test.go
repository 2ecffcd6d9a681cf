package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// flannelVXLAN describes a flanneld vxlan node: the config's VNI and Port
// (0: flanneld passes none and the kernel uses 8472) and the subnet it holds.
type flannelVXLAN struct {
	VNI    uint32
	Port   int
	Subnet netip.Prefix
	// PartialChecksums leaves the underlay veth's tx checksum offload on, so
	// the kernel's partial inner checksums cross to the peer unfinished, as
	// between containers on one bridge (see TestInteropVXLANPartialChecksums).
	PartialChecksums bool
	// DirectRouting is the config's vxlan DirectRouting: a lease whose
	// PublicIP is on-link (flanneld's ip.DirectRouting: the route to it has
	// no gateway) gets `ip route replace <subnet> via <PublicIP>` instead of
	// the neighbour, fdb entry and onlink route.
	DirectRouting bool
}

// flannelHost is a lab host built exactly as flanneld's vxlan backend builds
// one (docs/flannel-compat.md §3): the kernel device flannel.<VNI>, its lease in
// etcd in flanneld's JSON, and for every other vxlan lease a permanent
// neighbour, a permanent fdb entry and an onlink route, kept in step with
// etcd. Only the kernel forwards; no felt code runs in this host.
type flannelHost struct {
	*netns.Host
	Dev    string // flannel.<VNI>
	MAC    string // the device's MAC, published as VtepMAC
	Subnet netip.Prefix
	Addr   netip.Addr // <subnet>.0, on Dev
	MTU    int

	ctx        context.Context
	programmed leaseSet // vxlan leases with their three entries in place
	stopFollow func()
	ignored    leaseSet // leases of other backend types (flanneld skips them)
	direct     bool
	routed     leaseSet // DirectRouting: leases given a direct route
}

// newFlannelHost builds the flanneld node o in h, writes its lease and
// follows the others' until the test ends.
func newFlannelHost(t *testing.T, c *cluster, h *netns.Host, o flannelVXLAN) *flannelHost {
	t.Helper()
	if o.VNI == 0 {
		o.VNI = 1
	}
	f := &flannelHost{Host: h, Dev: fmt.Sprintf("flannel.%d", o.VNI), MAC: randomVtepMAC(t),
		Subnet: o.Subnet, Addr: o.Subnet.Addr(), MTU: c.lab.Config().MTU - 50, ctx: c.ctx, direct: o.DirectRouting}
	// As flanneld's netlink call: id, local, dev, nolearning, the port only if
	// set, and its own random MAC; ttl/tos 0 and udpcsum are the defaults.
	args := []string{"link", "add", f.Dev, "address", f.MAC, "mtu", strconv.Itoa(f.MTU), "type", "vxlan",
		"id", strconv.Itoa(int(o.VNI)), "local", h.Addr.String(), "dev", h.Iface, "nolearning"}
	if o.Port > 0 {
		args = append(args, "dstport", strconv.Itoa(o.Port))
	}
	f.must(t, "ip", args...)
	// A NIC finalizes checksums before the wire; a veth would carry the
	// kernel's partial inner TCP checksums across, which only another kernel
	// vxlan device accepts (see docs/flannel-interop.md, "Checksums").
	if !o.PartialChecksums {
		f.must(t, "ethtool", "-K", h.Iface, "tx", "off")
	}
	f.must(t, "ip", "addr", "add", netip.PrefixFrom(f.Addr, 32).String(), "dev", f.Dev)
	f.must(t, "ip", "link", "set", f.Dev, "up")

	value := fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":%d,"VtepMAC":%q}}`,
		h.Addr, o.VNI, f.MAC)
	if err := putFlannelLease(c.ctx, c.cli, f.Subnet, netip.Prefix{}, value); err != nil {
		t.Fatalf("flanneld lease for %s: %v", h.Name, err)
	}
	f.stopFollow = followLeases(t, c.cli, f.Subnet, f)
	return f
}

// exit stops the node as a stopped flanneld plus `ip link del flannel.<VNI>`:
// it no longer follows etcd and its device is gone, but its lease stays in
// etcd (flanneld does not delete it on exit), as do its peers' entries for it.
func (f *flannelHost) exit(t *testing.T) {
	t.Helper()
	f.stopFollow()
	f.must(t, "ip", "link", "del", f.Dev)
}

// randomVtepMAC is a random locally administered unicast MAC, as flanneld makes.
func randomVtepMAC(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = b[0]&0xfe | 0x02
	return net.HardwareAddr(b).String()
}

func (f *flannelHost) added(l flannelLease) error {
	if l.BackendType != "vxlan" {
		f.ignored.set(l)
		return nil
	}
	if f.direct {
		out, err := f.Command(f.ctx, "ip", "-o", "route", "get", l.PublicIP.String()).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: ip route get %s: %v: %s", f.Name, l.PublicIP, err, out)
		}
		if !strings.Contains(string(out), " via ") {
			if err := f.run("ip", "route", "replace", l.Subnet.String(), "via", l.PublicIP.String()); err != nil {
				return err
			}
			f.routed.set(l)
			f.programmed.set(l)
			return nil
		}
	}
	gw := l.Subnet.Addr().String()
	steps := [][]string{
		{"ip", "neigh", "replace", gw, "lladdr", l.VtepMAC, "dev", f.Dev, "nud", "permanent"},
		{"bridge", "fdb", "replace", l.VtepMAC, "dev", f.Dev, "dst", l.PublicIP.String(), "self", "permanent"},
		{"ip", "route", "replace", l.Subnet.String(), "via", gw, "dev", f.Dev, "onlink"},
	}
	for _, s := range steps {
		if err := f.run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	f.programmed.set(l)
	return nil
}

func (f *flannelHost) removed(l flannelLease) error {
	f.ignored.drop(l.Subnet)
	if l.BackendType != "vxlan" {
		return nil
	}
	f.programmed.drop(l.Subnet)
	if old, ok := f.routed.get(l.Subnet); ok {
		f.routed.drop(l.Subnet)
		return f.run("ip", "route", "del", l.Subnet.String(), "via", old.PublicIP.String())
	}
	gw := l.Subnet.Addr().String()
	for _, s := range [][]string{
		{"ip", "route", "del", l.Subnet.String(), "via", gw, "dev", f.Dev, "onlink"},
		{"bridge", "fdb", "del", l.VtepMAC, "dev", f.Dev, "dst", l.PublicIP.String(), "self"},
		{"ip", "neigh", "del", gw, "dev", f.Dev},
	} {
		if err := f.run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func (f *flannelHost) run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	out, err := f.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s %s: %v: %s", f.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (f *flannelHost) must(t *testing.T, name string, args ...string) {
	t.Helper()
	if err := f.run(name, args...); err != nil {
		t.Fatal(err)
	}
}

// vxlanInfo is the device as `ip -d -j link show` reports it.
type vxlanInfo struct {
	MTU      int
	MAC      string
	VNI      int
	Port     int
	Local    string
	Learning bool
	Link     string
}

func (f *flannelHost) device(t *testing.T) vxlanInfo {
	t.Helper()
	out, err := f.Command(f.ctx, "ip", "-d", "-j", "link", "show", "dev", f.Dev).Output()
	if err != nil {
		t.Fatalf("ip -d link show %s in %s: %v", f.Dev, f.Name, err)
	}
	var links []struct {
		MTU      int    `json:"mtu"`
		Address  string `json:"address"`
		Link     string `json:"link"`
		LinkInfo struct {
			Kind string `json:"info_kind"`
			Data struct {
				ID       int    `json:"id"`
				Port     int    `json:"port"`
				Local    string `json:"local"`
				Learning bool   `json:"learning"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 || links[0].LinkInfo.Kind != "vxlan" {
		t.Fatalf("ip -d -j link show %s: %v: %s", f.Dev, err, out)
	}
	l := links[0]
	d := l.LinkInfo.Data
	return vxlanInfo{MTU: l.MTU, MAC: l.Address, VNI: d.ID, Port: d.Port, Local: d.Local, Learning: d.Learning, Link: l.Link}
}

// hostOutput runs a command in h and returns its combined output.
func hostOutput(ctx context.Context, h *netns.Host, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), h.Name, err, out)
	}
	return string(out), nil
}
