package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/testwait"
	"github.com/feltnet/felt/router/routertest"
)

// ipv4 builds an IPv4/UDP-protocol packet of total length size with a
// correct header checksum; the payload is seqPayload(seq).
func ipv4(src, dst string, ttl byte, seq uint32, size int) []byte {
	return encaptest.IPv4(netip.MustParseAddr(src), netip.MustParseAddr(dst), ttl, 17, seqPayload(seq, size-20))
}

// seqPayload is n bytes carrying seq at their start and a pattern after it.
func seqPayload(seq uint32, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint32(b, seq)
	for i := 4; i < n; i++ {
		b[i] = byte(i*7) ^ byte(seq)
	}
	return b
}

// ipChecksum is the checksum the IPv4 header h should carry (its own
// checksum field counted as zero).
func ipChecksum(h []byte) uint16 {
	z := bytes.Clone(h[:20])
	z[10], z[11] = 0, 0
	return encaptest.Checksum(z)
}

func seqOf(p []byte) uint32 { return binary.BigEndian.Uint32(p[20:]) }

// host is one engine with its fakes.
type host struct {
	name   string
	addr   netip.AddrPort
	subnet netip.Prefix
	mac    [6]byte
	dev    *routertest.Device
	conn   *routertest.Conn
	eng    *Engine
	framer Framer
	done   chan error
}

func (h *host) peer() Peer { return Peer{Subnet: h.subnet, Addr: h.addr, MAC: h.mac} }

var testNetwork = netip.MustParsePrefix("10.5.0.0/16")

type framing string

const (
	vxlanFraming framing = "vxlan"
	udpFraming   framing = "udp"
)

const udpMTU = 1472

func newFramer(f framing, mac [6]byte) Framer {
	if f == vxlanFraming {
		return encap.NewVXLAN(1, mac)
	}
	return encap.NewUDP(udpMTU)
}

// newHost attaches host n (1-based) to network nw: public 192.0.2.n:8472,
// subnet 10.5.n.0/24, VtepMAC 02:00:00:00:00:n. The engine is not running.
func newHost(t *testing.T, nw *routertest.Network, f framing, n byte, batch int) *host {
	t.Helper()
	return newHostWith(t, nw, f, n, batch, nil)
}

// newHostWith is newHost with a hook to adjust the engine's Config.
func newHostWith(t *testing.T, nw *routertest.Network, f framing, n byte, batch int, adjust func(*Config)) *host {
	t.Helper()
	h := &host{
		name:   string(rune('a' + n - 1)),
		addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, n}), 8472),
		subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 5, n, 0}), 24),
		mac:    [6]byte{2, 0, 0, 0, 0, n},
		dev:    routertest.NewDevice(batch, 1024),
	}
	conn, err := nw.Listen(h.addr, batch, 1024)
	if err != nil {
		t.Fatal(err)
	}
	h.conn = conn
	h.framer = newFramer(f, h.mac)
	cfg := Config{
		Device: h.dev, Conn: h.conn, Framer: h.framer,
		Network: testNetwork, SubnetLen: 24, Local: h.subnet,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	h.eng, err = New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// start runs the engine until the test ends; cleanup stops it and waits.
func (h *host) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.done = make(chan error, 1)
	go func() { h.done <- h.eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("host %s: Run: %v", h.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("host %s: Run did not return after cancel", h.name)
		}
	})
}

// mesh creates hosts 1..n on one network, each knowing all the others, running.
func mesh(t *testing.T, f framing, n int) []*host {
	t.Helper()
	nw := routertest.NewNetwork()
	hosts := make([]*host, n)
	for i := range hosts {
		hosts[i] = newHost(t, nw, f, byte(i+1), 64)
	}
	for _, h := range hosts {
		var peers []Peer
		for _, o := range hosts {
			if o != h {
				peers = append(peers, o.peer())
			}
		}
		h.eng.SetPeers(peers)
		h.start(t)
	}
	return hosts
}

// addr returns address .k in host h's subnet.
func (h *host) ip(k byte) string {
	a := h.subnet.Addr().As4()
	a[3] = k
	return netip.AddrFrom4(a).String()
}

// recv waits for the next packet h's TUN gets.
func (h *host) recv(t *testing.T) []byte {
	t.Helper()
	p, err := h.dev.Next(10 * time.Second)
	if err != nil {
		t.Fatalf("host %s: no packet on the TUN: %v", h.name, err)
	}
	return p
}

// eventually polls cond (the loops flush counters after they hand packets
// on, so a receiver may see a packet before the sender counts a drop).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, 10*time.Second, time.Millisecond, cond)
}

func framings() []framing { return []framing{vxlanFraming, udpFraming} }
