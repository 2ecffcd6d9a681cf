package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/netns"
)

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
