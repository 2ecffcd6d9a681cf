package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestInteropVXLAN puts felt and a flanneld vxlan node (a kernel flannel.<VNI>
// programmed from etcd exactly as flanneld programs it; see flannelhost_test.go)
// in one cluster, with the default VNI and port and with Windows-style ones.
// Each side learns the other only from etcd; ping works both ways and 100 MiB
// cross each way byte for byte through the kernel's vxlan code.
func TestInteropVXLAN(t *testing.T) {
	for _, tc := range []struct {
		name         string
		vni          uint32
		port         int // in the config; 0: absent, the kernel's 8472
		wantPort     int
		flannelFirst bool // whose lease is in etcd first
	}{
		{name: "vni1-port8472", wantPort: 8472, flannelFirst: true},
		{name: "vni4096-port4789", vni: 4096, port: 4789, wantPort: 4789},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := `{"Type":"vxlan"}`
			if tc.vni != 0 {
				backend = fmt.Sprintf(`{"Type":"vxlan","VNI":%d,"Port":%d}`, tc.vni, tc.port)
			}
			c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":`+backend+`}`)
			hf := c.lab.Hosts[0]
			spec := flannelVXLAN{VNI: tc.vni, Port: tc.port, Subnet: netip.MustParsePrefix("10.5.250.0/24")}
			var fh *flannelHost
			if tc.flannelFirst {
				fh = newFlannelHost(t, c, c.lab.Hosts[1], spec)
				c.start(hf)
			} else {
				c.start(hf)
				fh = newFlannelHost(t, c, c.lab.Hosts[1], spec)
			}
			wantVNI := int(max(tc.vni, 1))
			if d := fh.device(t); d.VNI != wantVNI || d.Port != tc.wantPort || d.Local != fh.Host.Addr.String() ||
				d.Learning || d.MTU != 1450 || d.MAC != fh.MAC {
				t.Fatalf("flannel host's %s is not as flanneld builds it: %+v (want VNI %d, port %d, local %s, nolearning, MTU 1450, MAC %s)",
					fh.Dev, d, wantVNI, tc.wantPort, fh.Host.Addr, fh.MAC)
			}

			// felt took the flanneld lease as a peer, from its JSON alone.
			c.waitPeers(hf, 1, 10*time.Second)
			st := c.status(hf)
			want := netip.AddrPortFrom(fh.Host.Addr, uint16(tc.wantPort)).String()
			if p := st.Peers[0]; p.Subnet != fh.Subnet.String() || p.MAC != fh.MAC || p.Addr != want {
				t.Fatalf("felt's peer for the flanneld node: %+v, want subnet %s, MAC %s, addr %s", p, fh.Subnet, fh.MAC, want)
			}
			// The flanneld node programmed felt's lease, from its JSON alone.
			feltNet := netip.MustParsePrefix(st.Subnet)
			fh.programmed.wait(t, "flannel host", feltNet, 10*time.Second)
			fdb, err := hostOutput(c.ctx, fh.Host, "bridge", "fdb", "show", "dev", fh.Dev)
			if err != nil {
				t.Fatal(err)
			}
			if wantFDB := st.VtepMAC + " dst " + hf.Addr.String() + " self permanent"; !strings.Contains(fdb, wantFDB) {
				t.Fatalf("flannel host's fdb lacks %q:\n%s", wantFDB, fdb)
			}

			feltAddr := feltNet.Addr()
			if err := pingEventually(c.ctx, hf, fh.Addr, 5*time.Second); err != nil {
				t.Fatalf("felt → flanneld: %v", err)
			}
			if err := pingEventually(c.ctx, fh.Host, feltAddr, 5*time.Second); err != nil {
				t.Fatalf("flanneld → felt: %v", err)
			}
			transfer(t, hf, fh.Host, fh.Addr, 100<<20)
			transfer(t, fh.Host, hf, feltAddr, 100<<20)

			if tc.flannelFirst {
				t.Run("other-backend-lease", func(t *testing.T) { otherBackendLease(t, c, fh) })
			}
		})
	}
}

// otherBackendLease writes a host-gw lease, as flanneld's host-gw backend
// would: felt must ignore it (as flanneld's vxlan nodes do), say so once in
// its log, and keep saying it only once while packets go its way and while
// the lease is renewed.
func otherBackendLease(t *testing.T, c *cluster, fh *flannelHost) {
	hf := c.lab.Hosts[0]
	agent := c.agents[hf.Name]
	sn := netip.MustParsePrefix("10.5.251.0/24")
	value := fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":null,"BackendType":"host-gw"}`, c.lab.Gateway())
	if err := putFlannelLease(c.ctx, c.cli, sn, netip.Prefix{}, value); err != nil {
		t.Fatal(err)
	}
	fh.ignored.wait(t, "flannel host (ignoring)", sn, 5*time.Second)

	warnings := func() int {
		n := 0
		for _, line := range strings.Split(agent.Log(), "\n") {
			if strings.Contains(line, "WARN") && strings.Contains(line, sn.String()) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for warnings() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("felt logged no warning for the host-gw lease %s:\n%s", sn, agent.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(agent.Log(), "ignoring lease") {
		t.Fatalf("felt's warning for %s does not say it ignores the lease:\n%s", sn, agent.Log())
	}

	before := c.status(hf).Counters["drop_no_route"]
	dst := sn.Addr().Next().Next()
	hf.Command(c.ctx, "ping", "-c", "5", "-i", "0.05", "-W", "1", dst.String()).Run() // fails: no route
	// A renewal, as flanneld's updateSubnet does it: an unconditional Put.
	if _, err := c.cli.Put(c.ctx, subnetsPrefix+"10.5.251.0-24", value); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for c.status(hf).Counters["drop_no_route"] < before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("felt did not count the 5 packets toward the host-gw lease as drop_no_route (%d → %d)",
				before, c.status(hf).Counters["drop_no_route"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// An ordering barrier: once felt shows a lease written after the renewal,
	// its watch has delivered the renewal too.
	barrier := netip.MustParsePrefix("10.5.252.0/24")
	bv := fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":%q}}`,
		c.lab.Gateway(), randomVtepMAC(t))
	if err := putFlannelLease(c.ctx, c.cli, barrier, netip.Prefix{}, bv); err != nil {
		t.Fatal(err)
	}
	c.waitPeers(hf, 2, 5*time.Second)
	st := c.status(hf)
	for _, p := range st.Peers {
		if p.Subnet == sn.String() {
			t.Fatalf("felt took the host-gw lease as a peer: %+v", st.Peers)
		}
	}
	if n := warnings(); n != 1 {
		t.Fatalf("felt logged %d warnings for the host-gw lease %s, want 1:\n%s", n, sn, agent.Log())
	}
	if _, err := c.cli.Delete(c.ctx, subnetsPrefix+"10.5.252.0-24"); err != nil {
		t.Fatal(err)
	}
	c.waitPeers(hf, 1, 5*time.Second)
}

// TestInteropVXLANPartialChecksums: when the underlay carries a kernel's
// partial checksums unfinished (veth, containers on one bridge, e.g. kind),
// the inner TCP checksum of what flannel.1 sends is only the pseudo-header
// sum. A kernel vxlan receiver accepts that (the skb stays CHECKSUM_PARTIAL);
// felt hands every received TCP/UDP packet to its TUN as partially
// checksummed (the outer UDP checksum already covered the bytes), so the
// kernel accepts it too. Before that, TCP dropped them (TcpInCsumErrors).
func TestInteropVXLANPartialChecksums(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`)
	hf := c.lab.Hosts[0]
	fh := newFlannelHost(t, c, c.lab.Hosts[1], flannelVXLAN{Subnet: netip.MustParsePrefix("10.5.250.0/24"), PartialChecksums: true})
	c.start(hf)
	c.waitPeers(hf, 1, 10*time.Second)
	feltNet := netip.MustParsePrefix(c.status(hf).Subnet)
	fh.programmed.wait(t, "flannel host", feltNet, 10*time.Second)
	if err := pingEventually(c.ctx, fh.Host, feltNet.Addr(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	transfer(t, fh.Host, hf, feltNet.Addr(), 1<<20)
}

// TestInteropVXLANReplaceFlanneld replaces a flanneld node by felt in place,
// as a user migrating a host would: flanneld stops, its device is deleted,
// felt starts with the same interface. felt takes over the node's lease by
// its PublicIP (same subnet, so its pods keep their addresses), publishes
// its own VtepMAC, and the remaining flanneld node re-programs from the
// lease update alone.
func TestInteropVXLANReplaceFlanneld(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`)
	a := newFlannelHost(t, c, c.lab.Hosts[0], flannelVXLAN{Subnet: netip.MustParsePrefix("10.5.250.0/24")})
	b := newFlannelHost(t, c, c.lab.Hosts[1], flannelVXLAN{Subnet: netip.MustParsePrefix("10.5.251.0/24")})
	a.programmed.wait(t, "flanneld node a", b.Subnet, 5*time.Second)
	b.programmed.wait(t, "flanneld node b", a.Subnet, 5*time.Second)
	if err := pingEventually(c.ctx, a.Host, b.Addr, 5*time.Second); err != nil {
		t.Fatalf("between the two flanneld nodes, before the change: %v", err)
	}

	b.exit(t)
	c.start(b.Host)
	st := c.status(b.Host)
	if st.Subnet != b.Subnet.String() {
		t.Fatalf("felt on the old flanneld node took %s, want its lease %s (reuse by PublicIP)", st.Subnet, b.Subnet)
	}
	a.programmed.waitFor(t, "flanneld node a", b.Subnet, 10*time.Second, func(l flannelLease) bool { return l.VtepMAC == st.VtepMAC })
	c.waitPeers(b.Host, 1, 10*time.Second)
	if err := pingEventually(c.ctx, a.Host, b.Addr, 5*time.Second); err != nil {
		t.Fatalf("flanneld → felt after the change: %v", err)
	}
	if err := pingEventually(c.ctx, b.Host, a.Addr, 5*time.Second); err != nil {
		t.Fatalf("felt → flanneld after the change: %v", err)
	}
	transfer(t, a.Host, b.Host, b.Addr, 16<<20)
	transfer(t, b.Host, a.Host, a.Addr, 16<<20)
}
