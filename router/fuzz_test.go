package router

import (
	"bytes"
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router/routertest"
)

// FuzzInbound feeds one hostile datagram at a time through the whole
// inbound path (sender check, decap, inner checks, TUN write) of an engine
// with one peer, for either framing, from the peer's address or a stranger's.
// It must not panic, and every datagram must be accounted for exactly once:
// written to the TUN or dropped with a reason.
func FuzzInbound(f *testing.F) {
	peerAddr := netip.MustParseAddrPort("192.0.2.1:8472")
	stranger := netip.MustParseAddrPort("198.51.100.9:8472")
	peerMAC, ownMAC := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	engines := map[bool]*Engine{} // by vxlan
	for _, vx := range []bool{false, true} {
		var fr Framer = encap.NewUDP(udpMTU)
		if vx {
			fr = encap.NewVXLAN(1, ownMAC)
		}
		nw := routertest.NewNetwork()
		conn, err := nw.Listen(netip.MustParseAddrPort("192.0.2.2:8472"), 1, 4)
		if err != nil {
			f.Fatal(err)
		}
		e, err := New(Config{Device: routertest.NewDevice(1, 4), Conn: conn, Framer: fr,
			Network: testNetwork, SubnetLen: 24, Local: netip.MustParsePrefix("10.5.2.0/24")}, zap.NewNop())
		if err != nil {
			f.Fatal(err)
		}
		e.SetPeers([]Peer{{Subnet: netip.MustParsePrefix("10.5.1.0/24"), Addr: peerAddr, MAC: peerMAC}})
		engines[vx] = e
	}
	good := ipv4("10.5.1.1", "10.5.2.2", 64, 1, 60)
	for _, vx := range []bool{false, true} {
		buf := make([]byte, encap.Headroom+len(good))
		copy(buf[encap.Headroom:], good)
		var fr Framer = encap.NewUDP(udpMTU)
		if vx {
			fr = encap.NewVXLAN(1, peerMAC)
		}
		frame, r := fr.Encap(buf, encap.Headroom, len(good), ownMAC)
		if r != drop.OK {
			f.Fatal(r)
		}
		f.Add(vx, true, frame)
		f.Add(vx, false, frame)
	}
	f.Add(true, true, []byte{8, 0, 0})
	f.Fuzz(func(t *testing.T, vx, fromPeer bool, frame []byte) {
		e := engines[vx]
		in := e.in
		in.views[0] = bytes.Clone(frame) // forward rewrites it in place, as it does the Conn's memory
		in.addrs[0] = stranger
		if fromPeer {
			in.addrs[0] = peerAddr
		}
		before := e.stats.Snapshot()
		in.forward(1)
		after := e.stats.Snapshot()
		if got := (after.InPackets - before.InPackets) + (after.TotalDropped() - before.TotalDropped()); got != 1 {
			t.Fatalf("one datagram counted %d times (in %d→%d, dropped %d→%d)", got,
				before.InPackets, after.InPackets, before.TotalDropped(), after.TotalDropped())
		}
		if !fromPeer && after.Dropped(drop.UnknownSender) == before.Dropped(drop.UnknownSender) {
			t.Fatal("a stranger's datagram was not dropped as unknown_sender")
		}
	})
}
