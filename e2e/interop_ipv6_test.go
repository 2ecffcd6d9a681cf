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
)

// TestInteropVXLANDualStack: a host built as flanneld's vxlan backend builds
// a dual-stack node (flannel.1 over the IPv4 underlay, flannel-v6.1 over the
// IPv6 one, each with its own MAC; its lease with PublicIPv6 and
// BackendV6Data; felt's lease programmed into both devices from the lease
// JSON, as flanneld's handleSubnetEvents does) and a felt host exchange
// traffic both ways over both families. Only the kernel forwards on the
// flanneld host.
func TestInteropVXLANDualStack(t *testing.T) {
	c := newCluster(t, 2, dualConfig("vxlan"))
	addUnderlay6(t, c)
	hf, hk := c.lab.Hosts[0], c.lab.Hosts[1]
	c.start(hf)

	// felt's lease, as the flanneld node reads it from etcd.
	resp, err := c.cli.Get(c.ctx, "/coreos.com/network/subnets/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("felt's lease: %v %v", resp, err)
	}
	fsn, fsn6, err := lease.ParseSubnetKey(string(resp.Kvs[0].Key))
	if err != nil || !fsn6.IsValid() {
		t.Fatalf("felt's lease key %s: %v", resp.Kvs[0].Key, err)
	}
	var fa struct {
		PublicIP, PublicIPv6       string
		BackendData, BackendV6Data struct {
			VNI     int
			VtepMAC string
		}
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &fa); err != nil {
		t.Fatal(err)
	}

	// The flanneld node: its subnets next to felt's.
	ksn := netip.MustParsePrefix("10.5.200.0/24")
	ksn6 := netip.MustParsePrefix("fd00:5:0:c8::/64")
	if fsn == ksn || fsn6 == ksn6 {
		t.Skipf("felt took %s/%s, the subnets this test gives the kernel node", fsn, fsn6)
	}
	mac4, mac6 := randomVtepMAC(t), randomVtepMAC(t)
	mtu := c.lab.Config().MTU - 50
	run := func(args ...string) { t.Helper(); mustRun(t, c.ctx, hk, args[0], args[1:]...) }
	// flanneld's newVXLANDevice, once per family: MTU extMTU-50 (the kernel
	// caps the v6 device at extMTU-70), nolearning, local, dev.
	run("ip", "link", "add", "flannel.1", "address", mac4, "mtu", strconv.Itoa(mtu), "type", "vxlan", "id", "1",
		"local", hk.Addr.String(), "dev", hk.Iface, "nolearning")
	run("ip", "link", "add", "flannel-v6.1", "address", mac6, "mtu", strconv.Itoa(mtu), "type", "vxlan", "id", "1",
		"local", underlay6(1).String(), "dev", hk.Iface, "nolearning")
	run("ethtool", "-K", hk.Iface, "tx", "off") // a NIC finalizes checksums; a veth would not (docs/flannel-interop.md)
	run("ip", "addr", "add", netip.PrefixFrom(ksn.Addr(), 32).String(), "dev", "flannel.1")
	run("ip", "addr", "add", netip.PrefixFrom(ksn6.Addr(), 128).String(), "dev", "flannel-v6.1", "nodad")
	run("ip", "link", "set", "flannel.1", "up")
	run("ip", "link", "set", "flannel-v6.1", "up")
	// handleSubnetEvents for felt's lease: per family neighbour, fdb, onlink route.
	gw4, gw6 := fsn.Addr().String(), fsn6.Addr().String()
	run("ip", "neigh", "replace", gw4, "lladdr", fa.BackendData.VtepMAC, "dev", "flannel.1", "nud", "permanent")
	run("bridge", "fdb", "replace", fa.BackendData.VtepMAC, "dev", "flannel.1", "dst", fa.PublicIP, "self", "permanent")
	run("ip", "route", "replace", fsn.String(), "via", gw4, "dev", "flannel.1", "onlink")
	run("ip", "-6", "neigh", "replace", gw6, "lladdr", fa.BackendV6Data.VtepMAC, "dev", "flannel-v6.1", "nud", "permanent")
	run("bridge", "fdb", "replace", fa.BackendV6Data.VtepMAC, "dev", "flannel-v6.1", "dst", fa.PublicIPv6, "self", "permanent")
	run("ip", "-6", "route", "replace", fsn6.String(), "via", gw6, "dev", "flannel-v6.1", "onlink")
	out, _ := hostOutput(c.ctx, hk, "ip", "-j", "link", "show", "flannel-v6.1")
	t.Logf("kernel flannel-v6.1: %s", out)

	// Its lease, byte for byte as flanneld's registry writes a dual-stack one.
	value := fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":%q,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":%q},"BackendV6Data":{"VNI":1,"VtepMAC":%q}}`,
		hk.Addr, underlay6(1), mac4, mac6)
	key := "/coreos.com/network/subnets/" + lease.SubnetKeyName(ksn, ksn6)
	g, err := c.cli.Grant(c.ctx, 86400)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.cli.Put(c.ctx, key, value, clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	c.waitPeers(hf, 2, 20*time.Second)

	feltAddr4, feltAddr6 := fsn.Addr(), fsn6.Addr() // felt0's /32 and /128
	for _, p := range []struct {
		from, to   string
		dst        netip.Addr
		fromKernel bool
	}{
		{"felt", "kernel", ksn.Addr(), false}, {"felt", "kernel", ksn6.Addr(), false},
		{"kernel", "felt", feltAddr4, true}, {"kernel", "felt", feltAddr6, true},
	} {
		from := hf
		if p.fromKernel {
			from = hk
		}
		if err := pingEventually(c.ctx, from, p.dst, 10*time.Second); err != nil {
			t.Fatalf("%s → %s: %v", p.from, p.to, err)
		}
	}
	const size = 8 << 20
	transfer(t, hf, hk, ksn.Addr(), size)
	transfer(t, hf, hk, ksn6.Addr(), size)
	transfer(t, hk, hf, feltAddr4, size)
	transfer(t, hk, hf, feltAddr6, size)
	for _, k := range []string{"drop_bad_checksum", "drop_not_for_us", "drop_source_outside_subnet", "drop_unknown_sender", "drop_loop_mac"} {
		if v := c.status(hf).Counters[k]; v != 0 {
			t.Errorf("felt counted %s = %d", k, v)
		}
	}
}
