package router

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

var testNetwork6 = netip.MustParsePrefix("fd00:5::/48")

// ipv6 builds an IPv6/UDP-protocol packet of total length size; the payload
// is seqPayload(seq).
func ipv6(src, dst string, hop byte, seq uint32, size int) []byte {
	return encaptest.IPv6(netip.MustParseAddr(src), netip.MustParseAddr(dst), hop, 17, seqPayload(seq, size-40))
}

// dualHost is host n of a dual-stack mesh: IPv4 subnet 10.5.n.0/24 and IPv6
// subnet fd00:5:0:n::/64, one public address for both (the udp backend's
// dual-stack shape; vxlan's second underlay is the Conn's business), and
// per family a VtepMAC (02:00:00:00:04:n, 02:00:00:00:06:n).
type dualHost struct {
	*host
	subnet6 netip.Prefix
	mac6    [6]byte
}

func (h *dualHost) ip6(k byte) string {
	a := h.subnet6.Addr().As16()
	a[15] = k
	return netip.AddrFrom16(a).String()
}

func (h *dualHost) peers() []Peer {
	return []Peer{{Subnet: h.subnet, Addr: h.addr, MAC: h.mac}, {Subnet: h.subnet6, Addr: h.addr, MAC: h.mac6}}
}

func dualMesh(t *testing.T, f framing, n int) []*dualHost {
	t.Helper()
	nw := routertest.NewNetwork()
	hosts := make([]*dualHost, n)
	for i := range hosts {
		k := byte(i + 1)
		h := &dualHost{
			host: &host{name: string(rune('a' + i)), addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, k}), 8472),
				subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 5, k, 0}), 24),
				mac:    [6]byte{2, 0, 0, 0, 4, k}, dev: routertest.NewDevice(64, 1024)},
			subnet6: netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 5, 0, 0, 0, k}), 64),
			mac6:    [6]byte{2, 0, 0, 0, 6, k},
		}
		conn, err := nw.Listen(h.addr, 64, 1024)
		if err != nil {
			t.Fatal(err)
		}
		h.conn = conn
		h.framer = encap.NewUDP(udpMTU)
		if f == vxlanFraming {
			h.framer = encap.NewVXLANDual(1, h.mac, h.mac6)
		}
		h.eng, err = New(Config{Device: h.dev, Conn: h.conn, Framer: h.framer,
			Network: testNetwork, SubnetLen: 24, Local: h.subnet,
			IPv6Network: testNetwork6, IPv6SubnetLen: 64, Local6: h.subnet6}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	for _, h := range hosts {
		var peers []Peer
		for _, o := range hosts {
			if o != h {
				peers = append(peers, o.peers()...)
			}
		}
		h.eng.SetPeers(peers)
		h.start(t)
	}
	return hosts
}

// Both families cross one engine pair, each framed with its family's MAC;
// anti-spoofing and the own-subnet check hold per family.
func TestDualStackThroughEngines(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := dualMesh(t, f, 3)
			a, b, c := h[0], h[1], h[2]
			p4 := ipv4(a.ip(1), b.ip(2), 64, 1, 200)
			p6 := ipv6(a.ip6(1), b.ip6(2), 64, 2, 200)
			p6c := ipv6(a.ip6(1), c.ip6(2), 64, 3, 300)
			if err := a.dev.Inject(p4, p6, p6c); err != nil {
				t.Fatal(err)
			}
			for _, want := range [][]byte{p4, p6} {
				got := b.recv(t)
				if f == udpFraming { // the udp framing spends one TTL/hop per side
					if got[0]>>4 == 4 {
						got[8] += 2
						binary.BigEndian.PutUint16(got[10:], ipChecksum(got[:20]))
					} else {
						got[7] += 2
					}
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("b got % x..., want % x...", got[:48], want[:48])
				}
			}
			if got := c.recv(t); len(got) != len(p6c) {
				t.Fatalf("c got %d bytes, want %d", len(got), len(p6c))
			}
			// a claims c's IPv6 source toward b, and sends b a packet for
			// an IPv6 address outside b's subnet.
			spoof := ipv6(c.ip6(9), b.ip6(2), 64, 4, 100)
			wrong := ipv6(a.ip6(1), "fd00:5:0:99::1", 64, 5, 100)
			a.eng.SetPeers(append(a.eng.Table().Peers(), Peer{Subnet: pfx("fd00:5:0:99::/64"), Addr: b.addr, MAC: b.mac6}))
			if err := a.dev.Inject(spoof, wrong); err != nil {
				t.Fatal(err)
			}
			eventually(t, "b's drops", func() bool {
				d := b.eng.Stats().Snapshot().Drops
				return d[drop.SourceOutsideSubnet] == 1 && d[drop.NotLocal] == 1
			})
			// Own IPv6 subnet from the TUN is the kernel's to deliver.
			if err := a.dev.Inject(ipv6(a.ip6(1), a.ip6(7), 64, 6, 100)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a's own_subnet drop", func() bool { return a.eng.Stats().Snapshot().Drops[drop.OwnSubnet] == 1 })
		})
	}
}

// The IPv6 index agrees with a naive longest-prefix match, with peers of
// the pool's length, longer, shorter and outside the pool, IPv4 among them.
func TestTable6MatchesNaiveLPM(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	network := pfx("fd00:5::/48")
	rand6 := func(p netip.Prefix) netip.Addr {
		b := p.Addr().As16()
		for i := p.Bits(); i < 128; i++ {
			if rng.IntN(2) == 1 {
				b[i/8] |= 0x80 >> (i % 8)
			}
		}
		return netip.AddrFrom16(b)
	}
	var peers []Peer
	for i := range 300 {
		bits := 64
		switch i % 5 {
		case 3:
			bits = 56 + rng.IntN(8)
		case 4:
			bits = 65 + rng.IntN(40)
		}
		a := rand6(network)
		if i%17 == 0 {
			a = rand6(pfx("fd00:9::/48"))
		}
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 8472)
		peers = append(peers, Peer{Subnet: netip.PrefixFrom(a, bits).Masked(), Addr: addr})
		if i%10 == 0 {
			peers = append(peers, Peer{Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 5, byte(i), 0}), 24), Addr: addr})
		}
	}
	tab := NewDualTable(pfx("10.5.0.0/16"), 24, network, 64, peers)
	for range 5000 {
		var dst netip.Addr
		if rng.IntN(2) == 0 {
			dst = rand6(peers[rng.IntN(len(peers))].Subnet)
		} else {
			dst = rand6(network)
		}
		if !dst.Is6() {
			continue
		}
		want := naiveLPM(peers, dst)
		got := tab.Lookup(dst)
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Fatalf("Lookup(%s) = %v, want %v", dst, got, want)
		}
	}
}

func TestTable6LookupAllocatesNothing(t *testing.T) {
	tab := NewDualTable(pfx("10.5.0.0/16"), 24, pfx("fd00:5::/48"), 64,
		[]Peer{peerAt("10.5.1.0/24", 1), peerAt("fd00:5:0:1::/64", 1), peerAt("fd00:9::/32", 2)})
	dsts := []netip.Addr{netip.MustParseAddr("fd00:5:0:1::7"), netip.MustParseAddr("fd00:9::1"), netip.MustParseAddr("fd00:5:0:2::1"), netip.MustParseAddr("10.5.1.1")}
	hits := 0
	if a := testing.AllocsPerRun(1000, func() {
		for _, d := range dsts {
			if tab.Lookup(d) != nil {
				hits++
			}
		}
		if tab.Sender(netip.MustParseAddr("192.0.2.1"), dsts[0]) != nil {
			hits++
		}
	}); a != 0 {
		t.Errorf("IPv6 lookups: %v allocations, want 0", a)
	}
	if hits == 0 {
		t.Error("no lookup hit")
	}
}

// A batch that mixes both families through the engine pair allocates nothing.
func TestDualStackBatchAllocatesNothing(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := dualMesh(t, f, 2)
			a, b := h[0], h[1]
			const n = 32
			pkts := make([][]byte, n)
			for i := range pkts {
				if i%2 == 0 {
					pkts[i] = ipv4(a.ip(1), b.ip(2), 64, uint32(i), 1400)
				} else {
					pkts[i] = ipv6(a.ip6(1), b.ip6(2), 64, uint32(i), 1400)
				}
			}
			if allocs := relayAllocs(t, a.dev, b.dev, pkts); allocs != 0 {
				t.Errorf("%v allocations per mixed batch of %d, want 0", allocs, n)
			}
			if d := b.eng.Stats().Snapshot().TotalDropped(); d != 0 {
				t.Errorf("drops: %v", b.eng.Stats().Snapshot().Drops)
			}
		})
	}
}
