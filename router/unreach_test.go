package router

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

// injectDev is a fake Device that records injected packets.
type injectDev struct {
	*routertest.Device
	got [][]byte
}

func (d *injectDev) NewInjector() func(buf []byte, offset int) error {
	return func(buf []byte, offset int) error {
		d.got = append(d.got, append([]byte(nil), buf[offset:]...))
		return nil
	}
}

// unreachHost is host a with an injecting device and a fixed clock, and no
// peers: every packet to 10.5.0.0/16 outside 10.5.1.0/24 has no route.
func unreachHost(t *testing.T, now *time.Time) (*host, *injectDev) {
	t.Helper()
	var dev *injectDev
	h := newHostWith(t, routertest.NewNetwork(), udpFraming, 1, 8, func(c *Config) {
		dev = &injectDev{Device: c.Device.(*routertest.Device)}
		c.Device = dev
		c.Now = func() time.Time { return *now }
	})
	return h, dev
}

// outboundBatch runs the outbound loop's forward on pkts.
func outboundBatch(h *host, pkts ...[]byte) {
	o := h.eng.out
	for i, p := range pkts {
		copy(o.bufs[i][encap.Headroom:], p)
		o.sizes[i] = len(p)
	}
	o.forward(len(pkts))
}

func tcpSyn(src, dst string) []byte {
	p := ipv4(src, dst, 64, 7, 60)
	p[9] = 6
	binary.BigEndian.PutUint16(p[10:], ipChecksum(p[:20]))
	return p
}

// TestUnreachReply: a packet with no route is answered with ICMP
// net-unreachable into the TUN, from the unreachable address to the sender,
// quoting the header and 8 bytes, with valid checksums.
func TestUnreachReply(t *testing.T) {
	now := time.Unix(1000, 0)
	h, dev := unreachHost(t, &now)
	syn := tcpSyn("10.5.1.0", "10.5.99.7")
	outboundBatch(h, syn)
	if len(dev.got) != 1 {
		t.Fatalf("%d replies, want 1", len(dev.got))
	}
	r := dev.got[0]
	if len(r) != 20+8+28 || r[0] != 0x45 || r[9] != 1 || int(binary.BigEndian.Uint16(r[2:])) != len(r) {
		t.Fatalf("reply header % x", r[:20])
	}
	if string(r[12:16]) != string(syn[16:20]) || string(r[16:20]) != string(syn[12:16]) {
		t.Errorf("reply from %v to %v, want from the unreachable %v to the sender %v", r[12:16], r[16:20], syn[16:20], syn[12:16])
	}
	if checksum(r[:20]) != 0 || checksum(r[20:]) != 0 {
		t.Errorf("bad checksum: ip %#x icmp %#x", checksum(r[:20]), checksum(r[20:]))
	}
	if r[20] != 3 || r[21] != 0 || string(r[28:]) != string(syn[:28]) {
		t.Errorf("ICMP type %d code %d quote % x", r[20], r[21], r[28:])
	}
	if h.eng.Stats().Snapshot().Drops[drop.NoRoute] != 1 {
		t.Errorf("no_route drops %d, want 1", h.eng.Stats().Snapshot().Drops[drop.NoRoute])
	}
}

// TestUnreachNotFor: no reply about ICMP errors, later fragments,
// multicast or unspecified sources, multicast or broadcast destinations, or
// packets that have a route (own subnet: dropped without a reply too).
func TestUnreachNotFor(t *testing.T) {
	now := time.Unix(1000, 0)
	h, dev := unreachHost(t, &now)
	icmpErr := ipv4("10.5.1.0", "10.5.99.7", 64, 1, 56)
	icmpErr[9], icmpErr[20] = 1, 3
	frag := tcpSyn("10.5.1.0", "10.5.99.7")
	binary.BigEndian.PutUint16(frag[6:], 185)
	outboundBatch(h, icmpErr, frag, tcpSyn("0.0.0.0", "10.5.99.7"), tcpSyn("224.0.0.5", "10.5.99.7"),
		tcpSyn("10.5.1.0", "10.5.1.9"), tcpSyn("10.5.1.0", "239.1.1.1"), tcpSyn("10.5.1.0", "255.255.255.255"))
	if len(dev.got) != 0 {
		t.Fatalf("%d replies, want none", len(dev.got))
	}
	echo := ipv4("10.5.1.0", "10.5.99.7", 64, 1, 56)
	echo[9], echo[20] = 1, 8
	outboundBatch(h, echo)
	if len(dev.got) != 1 {
		t.Fatalf("echo request: %d replies, want 1", len(dev.got))
	}
}

// TestUnreachRateLimit: a burst of unreachBurst, then unreachPerSec.
func TestUnreachRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	h, dev := unreachHost(t, &now)
	syn := tcpSyn("10.5.1.0", "10.5.99.7")
	for i := 0; i < 5; i++ {
		outboundBatch(h, syn, syn, syn, syn, syn, syn, syn, syn)
	}
	if len(dev.got) != unreachBurst {
		t.Fatalf("a burst of 40 got %d replies, want %d", len(dev.got), unreachBurst)
	}
	now = now.Add(100 * time.Millisecond) // 10 tokens back
	outboundBatch(h, syn, syn, syn, syn, syn, syn, syn, syn)
	outboundBatch(h, syn, syn, syn, syn, syn, syn, syn, syn)
	if want := unreachBurst + unreachPerSec/10; len(dev.got) != want {
		t.Fatalf("after 100 ms: %d replies, want %d", len(dev.got), want)
	}
}

// TestUnreachNoAllocs: answering allocates nothing (the fake records into
// preallocated space here).
func TestUnreachNoAllocs(t *testing.T) {
	now := time.Unix(1000, 0)
	h, _ := unreachHost(t, &now)
	sink := make([]byte, 0, 128)
	h.eng.out.unreach.inject = func(buf []byte, offset int) error { sink = append(sink[:0], buf[offset:]...); return nil }
	syn := tcpSyn("10.5.1.0", "10.5.99.7")
	o := h.eng.out
	copy(o.bufs[0][encap.Headroom:], syn)
	o.sizes[0] = len(syn)
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Second)
		o.forward(1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per no-route packet answered", allocs)
	}
	if len(sink) != 56 {
		t.Fatalf("reply of %d bytes", len(sink))
	}
}
