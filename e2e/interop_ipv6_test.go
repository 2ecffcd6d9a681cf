package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
)

// feltVXLANLease is felt's only lease as a flanneld node reads it from etcd:
// its subnets (the IPv4 one the zero Prefix on an IPv6-only network) and
// value.
type feltVXLANLease struct {
	sn, sn6                    netip.Prefix
	PublicIP, PublicIPv6       string
	BackendData, BackendV6Data struct {
		VNI     int
		VtepMAC string
	}
}

// startFeltBesideKernel builds a two-host cluster on cfg with the IPv6
// underlay, starts felt on hf and returns its lease; hk is left for the
// test to build as a flanneld node.
func startFeltBesideKernel(t *testing.T, cfg string) (c *cluster, hf, hk *netns.Host, fl feltVXLANLease) {
	t.Helper()
	c = newCluster(t, 2, cfg)
	addUnderlay6(t, c)
	hf, hk = c.lab.Hosts[0], c.lab.Hosts[1]
	c.start(hf)
	return c, hf, hk, readFeltLease(t, c)
}

func readFeltLease(t *testing.T, c *cluster) feltVXLANLease {
	t.Helper()
	resp, err := c.cli.Get(c.ctx, "/coreos.com/network/subnets/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("felt's lease: %v %v", resp, err)
	}
	var l feltVXLANLease
	if l.sn, l.sn6, err = lease.ParseSubnetKey(string(resp.Kvs[0].Key)); err != nil || !l.sn6.IsValid() {
		t.Fatalf("felt's lease key %s: %v", resp.Kvs[0].Key, err)
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// flannelDevice builds on h, as flanneld's vxlan backend does for one family,
// its device dev (newVXLANDevice: MTU extMTU-50, the kernel capping the v6
// device at extMTU-70; nolearning; local; dev), the lease subnet's address on
// it, and (handleSubnetEvents) a felt peer's neighbour, fdb entry and onlink
// route. ip is "ip" or "ip -6" split in words.
func flannelDevice(t *testing.T, c *cluster, h *netns.Host, ip []string, dev, mac string, local netip.Addr, own netip.Prefix,
	peer netip.Prefix, peerMAC, peerPublic string) {
	t.Helper()
	run := func(args ...string) { t.Helper(); mustRun(t, c.ctx, h, args[0], args[1:]...) }
	mtu := c.lab.Config().MTU - 50
	run("ip", "link", "add", dev, "address", mac, "mtu", strconv.Itoa(mtu), "type", "vxlan", "id", "1",
		"local", local.String(), "dev", h.Iface, "nolearning")
	addr := []string{"ip", "addr", "add", netip.PrefixFrom(own.Addr(), own.Addr().BitLen()).String(), "dev", dev}
	if own.Addr().Is6() {
		addr = append(addr, "nodad")
	}
	run(addr...)
	run("ip", "link", "set", dev, "up")
	gw := peer.Addr().String()
	run(append(ip, "neigh", "replace", gw, "lladdr", peerMAC, "dev", dev, "nud", "permanent")...)
	run("bridge", "fdb", "replace", peerMAC, "dev", dev, "dst", peerPublic, "self", "permanent")
	run(append(ip, "route", "replace", peer.String(), "via", gw, "dev", dev, "onlink")...)
}

func mustPutFlannelLease(t *testing.T, c *cluster, sn, sn6 netip.Prefix, value string) {
	t.Helper()
	if err := putFlannelLease(c.ctx, c.cli, sn, sn6, value); err != nil {
		t.Fatal(err)
	}
}

// checkInterop pings each way between the felt host hf and the kernel host
// hk, to each of the other's addresses, sends 8 MiB each way to each, and
// checks that felt dropped nothing for a reason a correct peer never gives.
func checkInterop(t *testing.T, c *cluster, hf, hk *netns.Host, feltAddrs, kernelAddrs []netip.Addr) {
	t.Helper()
	for _, p := range []struct {
		from, to *netns.Host
		dsts     []netip.Addr
	}{{hf, hk, kernelAddrs}, {hk, hf, feltAddrs}} {
		for _, dst := range p.dsts {
			if err := pingEventually(c.ctx, p.from, dst, 10*time.Second); err != nil {
				t.Fatalf("%s → %s: %v", p.from.Name, dst, err)
			}
		}
	}
	const size = 8 << 20
	for _, dst := range kernelAddrs {
		transfer(t, hf, hk, dst, size)
	}
	for _, dst := range feltAddrs {
		transfer(t, hk, hf, dst, size)
	}
	for _, k := range []string{"drop_bad_checksum", "drop_not_for_us", "drop_source_outside_subnet", "drop_unknown_sender", "drop_loop_mac"} {
		if v := c.status(hf).Counters[k]; v != 0 {
			t.Errorf("felt counted %s = %d", k, v)
		}
	}
}

// TestInteropVXLANDualStack: a host built as flanneld's vxlan backend builds
// a dual-stack node (flannel.1 over the IPv4 underlay, flannel-v6.1 over the
// IPv6 one, each with its own MAC; its lease with PublicIPv6 and
// BackendV6Data; felt's lease programmed into both devices from the lease
// JSON, as flanneld's handleSubnetEvents does) and a felt host exchange
// traffic both ways over both families. Only the kernel forwards on the
// flanneld host.
func TestInteropVXLANDualStack(t *testing.T) {
	c, hf, hk, fl := startFeltBesideKernel(t, dualConfig("vxlan"))

	// The flanneld node: its subnets next to felt's.
	ksn := netip.MustParsePrefix("10.5.200.0/24")
	ksn6 := netip.MustParsePrefix("fd00:5:0:c8::/64")
	if fl.sn == ksn || fl.sn6 == ksn6 {
		t.Skipf("felt took %s/%s, the subnets this test gives the kernel node", fl.sn, fl.sn6)
	}
	mac4, mac6 := randomVtepMAC(t), randomVtepMAC(t)
	mustRun(t, c.ctx, hk, "ethtool", "-K", hk.Iface, "tx", "off") // a NIC finalizes checksums; a veth would not (docs/flannel-interop.md)
	flannelDevice(t, c, hk, []string{"ip"}, "flannel.1", mac4, hk.Addr, ksn, fl.sn, fl.BackendData.VtepMAC, fl.PublicIP)
	flannelDevice(t, c, hk, []string{"ip", "-6"}, "flannel-v6.1", mac6, underlay6(1), ksn6, fl.sn6, fl.BackendV6Data.VtepMAC, fl.PublicIPv6)
	out, _ := hostOutput(c.ctx, hk, "ip", "-j", "link", "show", "flannel-v6.1")
	t.Logf("kernel flannel-v6.1: %s", out)

	mustPutFlannelLease(t, c, ksn, ksn6, fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":%q,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":%q},"BackendV6Data":{"VNI":1,"VtepMAC":%q}}`,
		hk.Addr, underlay6(1), mac4, mac6))
	c.waitPeers(hf, 2, 20*time.Second)
	// felt0's /32 and /128 on one side, flannel.1's and flannel-v6.1's on the other.
	checkInterop(t, c, hf, hk, []netip.Addr{fl.sn.Addr(), fl.sn6.Addr()}, []netip.Addr{ksn.Addr(), ksn6.Addr()})
}

// TestInteropVXLANIPv6Only: the same with an IPv6-only network (EnableIPv4
// false): the flanneld node has flannel-v6.1 alone and writes flanneld's
// IPv6-only lease (key 0.0.0.0-0&<IPv6>-<len>, PublicIP 0.0.0.0, no
// BackendData); felt's lease has the same shape, and traffic flows both
// ways over the IPv6 underlay.
func TestInteropVXLANIPv6Only(t *testing.T) {
	c, hf, hk, fl := startFeltBesideKernel(t, ipv6OnlyConfig("vxlan"))
	if fl.sn.IsValid() || fl.PublicIP != "0.0.0.0" || fl.BackendData.VtepMAC != "" || fl.BackendV6Data.VtepMAC == "" {
		t.Fatalf("felt's lease %+v: want flanneld's IPv6-only shape", fl)
	}
	ksn6 := netip.MustParsePrefix("fd00:6:0:c8::/64")
	if fl.sn6 == ksn6 {
		t.Skipf("felt took %s, the subnet this test gives the kernel node", fl.sn6)
	}
	mac6 := randomVtepMAC(t)
	mustRun(t, c.ctx, hk, "ethtool", "-K", hk.Iface, "tx", "off")
	flannelDevice(t, c, hk, []string{"ip", "-6"}, "flannel-v6.1", mac6, underlay6(1), ksn6, fl.sn6, fl.BackendV6Data.VtepMAC, fl.PublicIPv6)
	mustPutFlannelLease(t, c, netip.Prefix{}, ksn6, fmt.Sprintf(`{"PublicIP":"0.0.0.0","PublicIPv6":%q,"BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":%q}}`,
		underlay6(1), mac6))
	c.waitPeers(hf, 1, 20*time.Second)
	checkInterop(t, c, hf, hk, []netip.Addr{fl.sn6.Addr()}, []netip.Addr{ksn6.Addr()})
}
