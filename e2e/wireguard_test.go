package e2e

import (
	"bytes"
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
		if r := <-got; r.err != nil || r.n != int64(len(payload)) {
			t.Fatalf("marker transfer: %d bytes, %v", r.n, r.err)
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
		m := scrape(t, h0, "/metrics")
		for _, p := range st.Peers {
			for _, name := range []string{"felt_wireguard_peer_handshake_age_seconds", "felt_wireguard_peer_receive_bytes_total", "felt_wireguard_peer_transmit_bytes_total"} {
				series := fmt.Sprintf(`%s{public_key=%q,subnet=%q}`, name, p.PublicKey, p.Subnet)
				if !strings.Contains(m, series) {
					t.Fatalf("/metrics lacks %s", series)
				}
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
// until the capture file holds want bytes (or stops growing for a second),
// stops tcpdump and returns the file's bytes. Its buffer is 32 MiB (-B): with
// the default 2 MiB, a busy machine (make test runs the bench beside it) once
// lost most of a 4 MiB transfer's frames and the check could not judge.
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
		size, grew := int64(-1), time.Now()
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && time.Since(grew) < time.Second; {
			fi, err := os.Stat(file)
			if err != nil {
				break
			}
			if fi.Size() >= int64(want) {
				break
			}
			if fi.Size() != size {
				size, grew = fi.Size(), time.Now()
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

// scrape GETs path from the agent's health server in h (the socket is made
// inside h's namespace; net/http would dial from another thread).
func scrape(t *testing.T, h *netns.Host, path string) string {
	t.Helper()
	var conn net.Conn
	if err := h.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(healthPort), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
