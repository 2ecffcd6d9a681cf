package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// TestInteropUDP shows what can be shown of udp-backend compatibility without
// a flanneld binary: felt's lease is byte for byte flanneld's; felt's
// datagrams, as a node holding a flanneld-style lease receives them, are
// exactly raw IPv4 packets, never over that node's TUN MTU, with the TTL
// decremented once by the sender; and a node running flanneld's per-packet
// proxy (emulated, see flanneludp_test.go) exchanges ping and a TCP transfer
// with felt, byte for byte.
func TestInteropUDP(t *testing.T) {
	network := netip.MustParsePrefix("10.5.0.0/16")
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`)
	hf := c.lab.Hosts[0]
	emu := newFlannelUDP(t, c, c.lab.Hosts[1], netip.MustParsePrefix("10.5.250.0/24"), network)
	c.start(hf)

	st := c.status(hf)
	feltNet := netip.MustParsePrefix(st.Subnet)
	key := subnetsPrefix + feltNet.Addr().String() + "-" + strconv.Itoa(feltNet.Bits())
	resp, err := c.cli.Get(c.ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("felt's lease %s: %v (%d keys)", key, err, len(resp.Kvs))
	}
	if got, want := string(resp.Kvs[0].Value), fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null}`, hf.Addr); got != want {
		t.Fatalf("felt's udp lease is not flanneld's:\n got %s\nwant %s", got, want)
	}
	if resp.Kvs[0].Lease == 0 {
		t.Fatalf("felt's lease %s has no etcd lease (flanneld's has a 24 h one)", key)
	}
	if st.MTU != emu.MTU {
		t.Fatalf("felt's TUN MTU %d, want flanneld's underlay − 28 = %d", st.MTU, emu.MTU)
	}

	c.waitPeers(hf, 1, 10*time.Second)
	if p := c.status(hf).Peers[0]; p.Subnet != emu.Subnet.String() || p.Addr != netip.AddrPortFrom(emu.Host.Addr, 8285).String() {
		t.Fatalf("felt's peer for the flanneld node: %+v, want %s at %s:8285", p, emu.Subnet, emu.Host.Addr)
	}
	emu.programmed.wait(t, "flanneld udp emulation", feltNet, 10*time.Second)

	// Each side decrements once on send and once on receive: a reply from a
	// TTL-64 stack arrives with 62, whichever side pings.
	feltAddr := feltNet.Addr()
	for _, p := range []struct {
		from *netns.Host
		to   netip.Addr
	}{{hf, emu.Addr}, {emu.Host, feltAddr}} {
		if err := pingEventually(c.ctx, p.from, p.to, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if ttl, err := pingTTL(c.ctx, p.from, p.to, 56); err != nil || ttl != 62 {
			t.Fatalf("ping %s from %s: reply TTL %d (%v), want 62 (64, −1 per proxy on each side)", p.to, p.from.Name, ttl, err)
		}
	}
	// The largest packet felt's TUN takes fills the peer's MTU exactly.
	if _, err := pingTTL(c.ctx, hf, emu.Addr, emu.MTU-28); err != nil {
		t.Fatalf("full-size ping: %v", err)
	}

	const size = 100 << 20
	transfer(t, hf, emu.Host, emu.Addr, size)
	transfer(t, emu.Host, hf, feltAddr, size)

	w := emu.wireStats()
	t.Logf("at the flanneld node's socket: %+v", w)
	if w.Datagrams < size/emu.MTU {
		t.Fatalf("only %d datagrams arrived for a %d-byte transfer", w.Datagrams, size)
	}
	if w.Oversize != 0 || w.MaxSize != emu.MTU {
		t.Fatalf("%d datagrams over the flanneld node's MTU %d (largest %d); want none, and the largest exactly %d",
			w.Oversize, emu.MTU, w.MaxSize, emu.MTU)
	}
	if w.Malformed != 0 {
		t.Fatalf("%d datagrams were not exactly one raw IPv4 packet", w.Malformed)
	}
	if len(w.EchoTTL) != 1 || w.EchoTTL[63] == 0 {
		t.Fatalf("TTLs of felt's echo requests on the wire: %v, want all 63 (64 − 1, as flanneld's sender)", w.EchoTTL)
	}
}

var ttlRE = regexp.MustCompile(`ttl=(\d+)`)

// pingTTL pings once with size bytes of payload and DF set, and returns the
// reply's TTL.
func pingTTL(ctx context.Context, from *netns.Host, to netip.Addr, size int) (int, error) {
	out, err := from.Command(ctx, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", strconv.Itoa(size), to.String()).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ping -s %d %s from %s: %v\n%s", size, to, from.Name, err, out)
	}
	m := ttlRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("ping output has no ttl: %s", out)
	}
	return strconv.Atoi(string(m[1]))
}
