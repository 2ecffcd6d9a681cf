package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
	"github.com/feltnet/felt/wg"
)

const wgPort = 51820

// wgContainer is a container behind a host's bridge, as Docker with
// --bip=$FLANNEL_SUBNET --mtu=$FLANNEL_MTU makes it.
type wgContainer struct {
	host, ns *netns.Host
	addr     netip.Addr
}

// addContainer gives h a bridge on its subnet's first address and one
// container on the next, with the overlay MTU; ip_forward is turned on.
func (c *cluster) addContainer(h *netns.Host) wgContainer {
	c.t.Helper()
	env, err := lease.ReadSubnetEnv(c.subnetFile(h))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		c.t.Fatal(err)
	}
	gw := env.Subnet.Addr().Next()
	addr := gw.Next()
	ns, err := h.AddContainer(c.ctx, "c1", "cni0", netip.PrefixFrom(addr, env.Subnet.Bits()), gw)
	if err != nil {
		c.t.Fatal(err)
	}
	mtu := strconv.Itoa(env.MTU)
	for _, args := range [][]string{{"-n", h.Name, "link", "set", "cni0", "mtu", mtu}, {"-n", h.Name, "link", "set", "vc1", "mtu", mtu},
		{"-n", ns.Name, "link", "set", ns.Iface, "mtu", mtu}} {
		if out, err := exec.CommandContext(c.ctx, "ip", args...).CombinedOutput(); err != nil {
			c.t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	return wgContainer{host: h, ns: ns, addr: addr}
}

// leaseValue is the stored value of h's lease.
func (c *cluster) leaseValue(h *netns.Host) string {
	c.t.Helper()
	sn := netip.MustParsePrefix(c.status(h).Subnet)
	key := subnetsPrefix + sn.Addr().String() + "-" + strconv.Itoa(sn.Bits())
	resp, err := c.cli.Get(c.ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		c.t.Fatalf("lease %s: %v", key, err)
	}
	return string(resp.Kvs[0].Value)
}

// TestWireGuard: three felt hosts on the wireguard backend. The lease is
// flanneld's byte for byte with the key from the flanneld-format key file;
// every container reaches every other and moves 100 MiB byte for byte; the
// underlay carries no plaintext (a marker seen on the container bridge is
// absent from the underlay capture); /metrics and felt status show each
// peer's handshake and bytes; after a restart the key and lease are the same.
func TestWireGuard(t *testing.T) {
	c := newCluster(t, 3, `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}`)
	hosts := c.lab.Hosts
	c.startAll()

	// Key file and lease, as flanneld writes them.
	h0 := hosts[0]
	keyFile := filepath.Join(filepath.Dir(c.subnetFile(h0)), "wgkey")
	pub := checkKeyFile(t, keyFile)
	want := fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"%s","Port":%d}}`, h0.Addr, pub, wgPort)
	if got := c.leaseValue(h0); got != want {
		t.Fatalf("felt's wireguard lease is not flanneld's:\n got %s\nwant %s", got, want)
	}
	if st := c.status(h0); st.MTU != 1500-80 {
		t.Fatalf("TUN MTU %d, want flanneld's underlay − 80 = %d", st.MTU, 1500-80)
	}

	var ctrs []wgContainer
	for _, h := range hosts {
		ctrs = append(ctrs, c.addContainer(h))
	}
	for _, a := range ctrs {
		for _, b := range ctrs {
			if a != b {
				if err := pingEventually(c.ctx, a.ns, b.addr, 10*time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, a := range ctrs {
		for _, b := range ctrs {
			if a != b {
				start := time.Now()
				transfer(t, a.ns, b.ns, b.addr, 100<<20)
				t.Logf("%s → %s: 100 MiB in %v", a.ns.Name, b.ns.Name, time.Since(start).Round(time.Millisecond))
			}
		}
	}

	t.Run("no plaintext on the underlay", func(t *testing.T) {
		needTool(t, "tcpdump", "tcpdump")
		src, dst := ctrs[0], ctrs[1]
		dir := t.TempDir()
		under := capture(t, c, dst.host, dst.host.Iface, filepath.Join(dir, "underlay.pcap"))
		bridge := capture(t, c, dst.host, "cni0", filepath.Join(dir, "bridge.pcap"))
		marker := []byte("FELT-WIREGUARD-PLAINTEXT-MARKER-")
		ln, got := listenHash(t, dst.ns, dst.addr, io.Discard)
		defer ln.Close()
		conn := dialFrom(t, src.ns, ln.Addr().String())
		payload := bytes.Repeat(marker, (4<<20)/len(marker))
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if r := <-got; r.Err != nil || r.N != int64(len(payload)) {
			t.Fatalf("marker transfer: %d bytes, %v", r.N, r.Err)
		}
		u, b := under(len(payload)), bridge(len(payload))
		// The control: the capture and the grep see plaintext where there is some.
		if !bytes.Contains(b, marker) {
			t.Fatalf("the bridge capture (%d bytes) lacks the marker: the check cannot see plaintext", len(b))
		}
		if len(u) < len(payload) {
			t.Fatalf("the underlay capture holds %d bytes for a %d-byte transfer: it missed the traffic", len(u), len(payload))
		}
		if i := bytes.Index(u, marker); i >= 0 {
			t.Fatalf("plaintext marker on the underlay at byte %d of the capture", i)
		}
		t.Logf("underlay capture %d bytes, no marker; bridge capture %d bytes, marker present", len(u), len(b))
	})

	t.Run("metrics and status", func(t *testing.T) {
		st := c.status(h0)
		if len(st.Peers) != 2 {
			t.Fatalf("peers %+v", st.Peers)
		}
		for _, p := range st.Peers {
			if p.PublicKey == "" || p.LastHandshake == nil || p.RxBytes == 0 || p.TxBytes == 0 {
				t.Fatalf("peer status without wireguard state: %+v", p)
			}
		}
		m := c.metrics(h0)
		for _, p := range st.Peers {
			for _, name := range []string{"felt_wireguard_peer_handshake_age_seconds", "felt_wireguard_peer_receive_bytes_total", "felt_wireguard_peer_transmit_bytes_total"} {
				series := fmt.Sprintf(`%s{public_key=%q,subnet=%q}`, name, p.PublicKey, p.Subnet)
				if _, ok := m[series]; !ok {
					t.Fatalf("/metrics lacks %s", series)
				}
			}
		}
		// What felt's TUN drops under wireguard-go is counted as under
		// felt's own engine; clean transfers drop nothing.
		for _, reason := range []string{"bad_checksum", "bad_ip_checksum", "tun_bad_gso"} {
			if v, ok := m[`felt_drops_total{reason="`+reason+`"}`]; !ok || v != 0 {
				t.Errorf("/metrics felt_drops_total{reason=%q} = %v (present %v), want 0", reason, v, ok)
			}
		}
		out, err := h0.Command(c.ctx, felt(t), "status", "--healthz-port", strconv.Itoa(healthPort)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "key "+st.Peers[0].PublicKey) || !strings.Contains(string(out), "handshake ") {
			t.Fatalf("felt status: %v\n%s", err, out)
		}
		t.Logf("felt status:\n%s", out)
	})

	t.Run("restart keeps the key", func(t *testing.T) {
		before := c.leaseValue(h0)
		if err := c.agents[h0.Name].Stop(); err != nil {
			t.Fatal(err)
		}
		c.start(h0)
		if after := c.leaseValue(h0); after != before {
			t.Fatalf("lease changed over a restart:\nbefore %s\n after %s", before, after)
		}
		if got := checkKeyFile(t, keyFile); got != pub {
			t.Fatalf("key file's public key %s, was %s", got, pub)
		}
		c.waitPeers(h0, 2, 10*time.Second)
		// The peers kept their config for h0; h0's new device handshakes anew.
		for _, b := range ctrs[1:] {
			if err := pingEventually(c.ctx, ctrs[0].ns, b.addr, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		transfer(t, ctrs[1].ns, ctrs[0].ns, ctrs[0].addr, 16<<20)
	})
}

// checkKeyFile checks a key file as flanneld writes it (base64 of 32 bytes,
// no newline, mode 0400) and returns the public key.
func checkKeyFile(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o400 {
		t.Fatalf("%s: mode %v, want 0400 as flanneld", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := lease.ParseWireGuardKey(string(b))
	if err != nil || len(b) != 44 {
		t.Fatalf("%s holds %q: want 44 base64 characters and no newline (%v)", path, b, err)
	}
	return wg.Key(k).PublicKey().String()
}

func needTool(t *testing.T, bin, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("needs %s: apt-get install %s (scripts/deps.sh installs it as root)", bin, pkg)
	}
}

// capture runs tcpdump on iface in h and returns a function that waits
// until the capture file has settled (below), stops tcpdump and returns the
// file's bytes. Its buffer is 32 MiB (-B): with the default 2 MiB, a busy
// machine (make test runs the bench beside it) once lost most of a 4 MiB
// transfer's frames and the check could not judge.
// --immediate-mode hands each frame to tcpdump as it comes: libpcap's default
// ring holds frames in a block until the block fills or a timeout passes, and
// stopping tcpdump right after a transfer once cut a quarter of it off.
func capture(t *testing.T, c *cluster, h *netns.Host, iface, file string) func(want int) []byte {
	t.Helper()
	p, err := h.Start(c.ctx, "tcpdump", "-i", iface, "--immediate-mode", "-U", "-B", "32768", "-s", "0", "-w", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump on %s not listening: %s", iface, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func(want int) []byte {
		// Settled: the file has stopped growing for 300 ms once it holds
		// want bytes (headers make it reach want before the transfer's
		// last frames are in), or for a second before that.
		size, grew := int64(-1), time.Now()
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
			fi, err := os.Stat(file)
			if err != nil {
				break
			}
			if fi.Size() != size {
				size, grew = fi.Size(), time.Now()
			}
			if quiet := time.Since(grew); quiet >= time.Second || size >= int64(want) && quiet >= 300*time.Millisecond {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		p.Stop()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestWireGuardStopKeepsRoute: as for udp and vxlan, felt0 and its route
// to the Network outlive a stopped agent, so that while felt restarts the
// overlay's traffic is dropped into felt0 rather than sent out of the
// default route in the clear.
func TestWireGuardStopKeepsRoute(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}`)
	b := c.lab.Hosts[1]
	c.startAll()
	if err := c.agents[b.Name].Stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	out, err := b.Command(c.ctx, "ip", "route", "show", "10.5.0.0/16", "dev", "felt0").CombinedOutput()
	if err != nil || len(out) == 0 {
		t.Fatalf("felt0's route to the Network is gone while felt is stopped: %v %s", err, out)
	}
}

// udpGSOSend sends one UDP GSO super-datagram of size bytes in segments of
// seg from h to dst:port and returns how many payload bytes arrived at the
// listener (inside dstNS) within a second of the last one.
func udpGSOSend(t *testing.T, c *cluster, from, to wgContainer, size, seg int) int {
	t.Helper()
	var ln *net.UDPConn
	if err := to.ns.Do(func() (err error) {
		ln, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(to.addr, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conn *net.UDPConn
	if err := from.host.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", nil, ln.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, _ := conn.SyscallConn()
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) })
	if serr != nil {
		t.Skipf("UDP_SEGMENT: %v", serr)
	}
	if _, err := conn.Write(make([]byte, size)); err != nil {
		t.Fatalf("send %d bytes in %d-byte segments: %v", size, seg, err)
	}
	got := 0
	buf := make([]byte, 65536)
	for {
		ln.SetReadDeadline(time.Now().Add(time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			return got
		}
		got += n
	}
}

// TestWireGuardUDPGSO: a host's largest UDP GSO send (65,507 bytes, one
// 65,535-byte IP super-packet at the TUN) crosses the wireguard backend
// whole. wireguard-go's buffers hold 16 bytes of headroom and 65,519 of
// frame; wg.New caps the TUN's gso_max_size so that the kernel segments
// larger super-packets itself.
func TestWireGuardUDPGSO(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}`)
	for _, h := range c.lab.Hosts {
		c.start(h)
	}
	for _, h := range c.lab.Hosts {
		c.waitPeers(h, 1, 10*time.Second)
	}
	a, b := c.addContainer(c.lab.Hosts[0]), c.addContainer(c.lab.Hosts[1])
	if err := pingEventually(c.ctx, a.host, b.addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "-n", a.host.Name, "-d", "link", "show", "felt0").CombinedOutput()
	t.Logf("%s", out)
	const size = 65507
	for i := 0; i < 3; i++ {
		if got := udpGSOSend(t, c, a, b, size, 1001); got != size {
			t.Fatalf("UDP GSO send of %d bytes: %d arrived", size, got)
		}
	}
}

// TestInteropWireGuard: a flanneld-style wireguard node built from Debian's
// wireguard-go and wg, set up in flanneld's backend's order (key, device
// flannel-wg, listen port, MTU underlay − 80, subnet address /32, route to
// Network, its lease in etcd) and given its peer only from felt's lease
// JSON, with the config's PSK and keepalive. felt and the node exchange
// ping and 32 MiB TCP both ways, byte for byte; when the node's lease is
// deleted felt drops the peer and traffic stops both ways while the node
// itself stays configured.
func TestInteropWireGuard(t *testing.T) {
	needRoot(t)
	needTool(t, "wireguard-go", "wireguard-go")
	needTool(t, "wg", "wireguard-tools")
	const psk = "2Kd9oWkTDXPAUnvfJTd2LXAgjR1GsMQfO4gJpNsO7BU="
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard","PSK":"`+psk+`","PersistentKeepaliveInterval":25}}`)
	hf, hw := c.lab.Hosts[0], c.lab.Hosts[1]
	node := newWGNode(t, c, hw, netip.MustParsePrefix("10.5.250.0/24"), psk)
	c.start(hf)

	// As flanneld's handleSubnetEvents: every wireguard lease but its own
	// becomes a peer, from the lease JSON alone.
	c.waitPeers(hf, 1, 10*time.Second)
	node.peersFromLeases(t, c, 25)

	st := c.status(hf)
	feltAddr := netip.MustParsePrefix(st.Subnet).Addr()
	if p := st.Peers[0]; p.Subnet != node.subnet.String() || p.Addr != netip.AddrPortFrom(hw.Addr, wgPort).String() || p.PublicKey != node.pub {
		t.Fatalf("felt's peer for the wg node: %+v, want %s at %s:%d key %s", p, node.subnet, hw.Addr, wgPort, node.pub)
	}
	for _, p := range []struct {
		from *netns.Host
		to   netip.Addr
	}{{hf, node.addr}, {hw, feltAddr}} {
		if err := pingEventually(c.ctx, p.from, p.to, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The largest packet felt's TUN takes fits the node's MTU exactly.
	if _, err := pingTTL(c.ctx, hf, node.addr, 1500-80-28); err != nil {
		t.Fatalf("full-size ping: %v", err)
	}
	transfer(t, hf, hw, node.addr, 32<<20)
	transfer(t, hw, hf, feltAddr, 32<<20)
	hs := node.wg(t, "show", "flannel-wg", "latest-handshakes")
	if f := strings.Fields(hs); len(f) != 2 || f[1] == "0" {
		t.Fatalf("wg show latest-handshakes: %q, want one peer with a handshake", hs)
	}
	t.Logf("wg node's view of felt:\n%s", node.wg(t, "show", "flannel-wg"))

	// The node's lease goes: felt drops the peer, and with it every session.
	if _, err := c.cli.Delete(c.ctx, node.leaseKey); err != nil {
		t.Fatal(err)
	}
	c.waitPeers(hf, 0, 10*time.Second)
	if err := ping(c.ctx, hf, node.addr); err == nil {
		t.Fatalf("felt still reaches %s after its lease was deleted", node.addr)
	}
	if out, err := hw.Command(c.ctx, "ping", "-c", "3", "-i", "0.2", "-W", "1", feltAddr.String()).CombinedOutput(); err == nil {
		t.Fatalf("the wg node still reaches felt after its lease was deleted:\n%s", out)
	}
}

// wgNode is a flanneld wireguard node made of Debian's wireguard-go and wg.
type wgNode struct {
	h        *netns.Host
	subnet   netip.Prefix
	addr     netip.Addr // the device's address, the subnet's first, as flanneld's
	pub      string
	pskFile  string
	leaseKey string
}

func newWGNode(t *testing.T, c *cluster, h *netns.Host, subnet netip.Prefix, psk string) *wgNode {
	t.Helper()
	dir := t.TempDir()
	n := &wgNode{h: h, subnet: subnet, addr: subnet.Addr(), pskFile: filepath.Join(dir, "psk"),
		leaseKey: subnetsPrefix + subnet.Addr().String() + "-" + strconv.Itoa(subnet.Bits())}
	if err := os.WriteFile(n.pskFile, []byte(psk), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "wgkey")
	priv, err := exec.Command("wg", "genkey").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, priv, 0o400); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("wg", "pubkey")
	cmd.Stdin = strings.NewReader(string(priv))
	pub, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	n.pub = strings.TrimSpace(string(pub))

	p := startLogged(t, c.ctx, h, "wireguard-go", "wireguard-go", "-f", "flannel-wg")
	deadline := time.Now().Add(10 * time.Second)
	for h.Command(c.ctx, "wg", "show", "flannel-wg").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go made no flannel-wg:\n%s", p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.wg(t, "set", "flannel-wg", "private-key", keyFile, "listen-port", strconv.Itoa(wgPort))
	for _, args := range [][]string{
		{"link", "set", "flannel-wg", "mtu", strconv.Itoa(1500 - 80)},
		{"addr", "add", netip.PrefixFrom(n.addr, 32).String(), "dev", "flannel-wg"},
		{"link", "set", "flannel-wg", "up"},
		{"route", "replace", "10.5.0.0/16", "dev", "flannel-wg", "scope", "link"},
	} {
		if out, err := h.Command(c.ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	// flanneld's newSubnetAttrs for an IPv4-only node, under a 24 h lease.
	val := fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"%s","Port":%d}}`, h.Addr, n.pub, wgPort)
	grant, err := c.cli.Grant(c.ctx, 24*3600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.cli.Put(c.ctx, n.leaseKey, val, clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	return n
}

// peersFromLeases configures the node's peers from the wireguard leases in
// etcd other than its own, as flanneld's addPeer: endpoint PublicIP:Port,
// AllowedIPs the subnet, the PSK and keepalive of the config.
func (n *wgNode) peersFromLeases(t *testing.T, c *cluster, keepalive int) {
	t.Helper()
	resp, err := c.cli.Get(c.ctx, subnetsPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	peers := 0
	for _, kv := range resp.Kvs {
		if string(kv.Key) == n.leaseKey {
			continue
		}
		var attrs struct {
			PublicIP    string
			BackendType string
			BackendData struct {
				PublicKey string
				Port      uint16
			}
		}
		if err := json.Unmarshal(kv.Value, &attrs); err != nil {
			t.Fatalf("lease %s: %v", kv.Key, err)
		}
		if attrs.BackendType != "wireguard" {
			continue
		}
		sn := strings.Replace(strings.TrimPrefix(string(kv.Key), subnetsPrefix), "-", "/", 1)
		n.wg(t, "set", "flannel-wg", "peer", attrs.BackendData.PublicKey, "preshared-key", n.pskFile,
			"persistent-keepalive", strconv.Itoa(keepalive),
			"endpoint", fmt.Sprintf("%s:%d", attrs.PublicIP, attrs.BackendData.Port), "allowed-ips", sn)
		peers++
	}
	if peers != 1 {
		t.Fatalf("%d wireguard leases besides the node's own, want felt's one", peers)
	}
}

func (n *wgNode) wg(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.h.Command(t.Context(), "wg", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("wg %v: %v\n%s", args, err, out)
	}
	return string(out)
}
