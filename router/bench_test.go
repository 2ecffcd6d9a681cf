package router

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

// benchBed is an engine over a Sink (Device and Conn in one), with one
// outbound batch and one inbound batch prepared in its loops' buffers. The
// batch helpers restore what framing changes in place (the udp framing's TTL
// and checksum) so they can run any number of times.
type benchBed struct {
	e        *Engine
	sink     *routertest.Sink
	n        int
	outSaved [][3]byte // TTL and header checksum of each outbound packet
	inSaved  [][3]byte // likewise for the inbound packets (after the frame header)
	inOff    int       // offset of the inner IP header in an inbound datagram
	frames   [][]byte  // the inbound datagrams, as ReadViews would hand them out
	bytes    int64
}

func newBenchBed(tb testing.TB, f framing, n, size, npeers int) *benchBed {
	tb.Helper()
	sink := routertest.NewSink(n)
	local := netip.MustParsePrefix("10.5.1.0/24")
	mac := [6]byte{2, 0, 0, 0, 0, 1}
	e, err := New(Config{Device: sink, Conn: sink, Framer: newFramer(f, mac), Network: testNetwork, SubnetLen: 24, Local: local}, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	var peers []Peer
	for i := range npeers {
		peers = append(peers, Peer{
			Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 5, byte(10 + i), 0}), 24),
			Addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 8472),
			MAC:    [6]byte{2, 0, 0, 0, 0, byte(10 + i)},
		})
	}
	e.SetPeers(peers)
	bb := &benchBed{e: e, sink: sink, n: n, outSaved: make([][3]byte, n), inSaved: make([][3]byte, n)}
	peerFr := newFramer(f, peers[0].MAC)
	for i := range n {
		p := peers[i%npeers]
		dst := p.Subnet.Addr().As4()
		dst[3] = 9
		out := ipv4("10.5.1.7", netip.AddrFrom4(dst).String(), 64, uint32(i), size)
		copy(e.out.bufs[i][encap.Headroom:], out)
		e.out.sizes[i] = size
		copy(bb.outSaved[i][:], []byte{out[8], out[10], out[11]})

		// inbound: a frame from peer 0 to us
		src := peers[0].Subnet.Addr().As4()
		src[3] = 9
		in := ipv4(netip.AddrFrom4(src).String(), "10.5.1.7", 64, uint32(i), size)
		buf := make([]byte, encap.Headroom+size)
		copy(buf[encap.Headroom:], in)
		fr, r := peerFr.Encap(buf, encap.Headroom, size, mac)
		if r != drop.OK {
			tb.Fatalf("framing: %v", r)
		}
		bb.frames = append(bb.frames, fr)
		e.in.addrs[i] = peers[0].Addr
		bb.inOff = len(fr) - size
		if f == udpFraming { // Encap decremented it; restore the sender's view
			copy(fr[bb.inOff:], in)
		}
		copy(bb.inSaved[i][:], []byte{in[8], in[10], in[11]})
	}
	bb.bytes = int64(n * size)
	return bb
}

func (bb *benchBed) outboundBatch() {
	for i := range bb.n {
		b := bb.e.out.bufs[i][encap.Headroom:]
		b[8], b[10], b[11] = bb.outSaved[i][0], bb.outSaved[i][1], bb.outSaved[i][2]
	}
	if err := bb.e.out.forward(bb.n); err != nil {
		panic(err)
	}
}

func (bb *benchBed) inboundBatch() {
	for i := range bb.n {
		b := bb.frames[i][bb.inOff:]
		b[8], b[10], b[11] = bb.inSaved[i][0], bb.inSaved[i][1], bb.inSaved[i][2]
		bb.e.in.views[i] = bb.frames[i]
	}
	bb.e.in.forward(bb.n)
}

func BenchmarkOutboundBatch(b *testing.B) { benchBatch(b, (*benchBed).outboundBatch) }

func BenchmarkInboundBatch(b *testing.B) { benchBatch(b, (*benchBed).inboundBatch) }

// benchBatch runs batch, per framing, over a bed of 64 packets of 1400
// bytes to 8 peers.
func benchBatch(b *testing.B, batch func(*benchBed)) {
	for _, f := range framings() {
		b.Run(string(f), func(b *testing.B) {
			bb := newBenchBed(b, f, 64, 1400, 8)
			b.SetBytes(bb.bytes)
			b.ReportAllocs()
			for b.Loop() {
				batch(bb)
			}
			b.ReportMetric(float64(bb.n)*float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, npeers := range []int{256, 4096} {
		b.Run(fmt.Sprintf("peers=%d", npeers), func(b *testing.B) {
			network := netip.MustParsePrefix("10.0.0.0/8")
			peers := make([]Peer, npeers)
			for i := range peers {
				peers[i] = Peer{
					Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
					Addr:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}), 8472),
				}
			}
			tab := NewTable(network, 24, peers)
			rng := rand.New(rand.NewPCG(1, 2))
			dsts := make([]netip.Addr, 1024)
			senders := make([]netip.Addr, 1024)
			for i := range dsts {
				p := peers[rng.IntN(npeers)]
				dsts[i] = randAddr(rng, p.Subnet)
				senders[i] = p.Addr.Addr()
			}
			b.Run("Lookup", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if tab.Lookup(dsts[i&1023]) == nil {
						b.Fatal("miss")
					}
					i++
				}
			})
			b.Run("BySender", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if tab.BySender(senders[i&1023]) == nil {
						b.Fatal("miss")
					}
					i++
				}
			})
		})
	}
}
