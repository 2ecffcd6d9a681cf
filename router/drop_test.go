package router

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
)

// frameFor frames p as from would send it to to (a copy; p is kept).
func frameFor(t *testing.T, f framing, from, to *host, p []byte) []byte {
	t.Helper()
	buf := make([]byte, encap.Headroom+len(p))
	copy(buf[encap.Headroom:], p)
	fr, r := newFramer(f, from.mac).Encap(buf, encap.Headroom, len(p), to.mac)
	if r != drop.OK {
		t.Fatalf("framing the test packet: %v", r)
	}
	return fr
}

// expectDrops waits until h's drop counters equal want (all other reasons 0)
// and checks that a good packet sent afterwards is the next thing h's TUN
// got, i.e. none of the dropped packets leaked through.
func expectDrops(t *testing.T, h *host, want map[drop.Reason]uint64, probe func()) {
	t.Helper()
	eventually(t, "drop counters", func() bool {
		s := h.eng.Stats().Snapshot()
		for r := drop.Reason(0); r < drop.NumReasons; r++ {
			if s.Dropped(r) != want[r] {
				return false
			}
		}
		return true
	})
	if probe != nil {
		probe()
	}
}

func TestOutboundDrops(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := mesh(t, f, 2)
			a, b := h[0], h[1]
			bad := [][]byte{
				ipv4(a.ip(1), "10.5.9.1", 64, 1, 60),     // no peer holds 10.5.9.0/24
				ipv4(a.ip(1), "172.16.0.1", 64, 2, 60),   // outside the pool
				ipv4(a.ip(1), a.ip(2), 64, 3, 60),        // our own subnet
				{0x45, 0, 0},                             // not an IP packet
				ipv4(a.ip(1), b.ip(2), 1, 4, 60),         // TTL 1 (only udp framing decrements)
				ipv4(a.ip(1), b.ip(2), 64, 5, udpMTU+28), // larger than a udp peer takes
			}
			good := ipv4(a.ip(1), b.ip(2), 64, 99, 80)
			if err := a.dev.Inject(append(bad, good)...); err != nil {
				t.Fatal(err)
			}
			want := map[drop.Reason]uint64{drop.NoRoute: 2, drop.OwnSubnet: 1, drop.BadIP: 1}
			var leaked [][]byte
			if f == udpFraming {
				want[drop.TTLExpired] = 1
				want[drop.Oversize] = 1
			} else {
				leaked = bad[4:] // vxlan forwards both: the kernel hop decides
			}
			expectDrops(t, a, want, nil)
			for _, p := range append(leaked, good) {
				if got := b.recv(t); seqOf(got) != seqOf(p) {
					t.Fatalf("b got seq %d, want %d", seqOf(got), seqOf(p))
				}
			}
			if s := a.eng.Stats().Snapshot(); s.OutPackets != uint64(1+len(leaked)) {
				t.Errorf("OutPackets = %d, want %d", s.OutPackets, 1+len(leaked))
			}
		})
	}
}

func TestInboundDrops(t *testing.T) {
	for _, f := range framings() {
		t.Run(string(f), func(t *testing.T) {
			h := mesh(t, f, 2)
			a, b := h[0], h[1]
			stranger := netip.MustParseAddrPort("198.51.100.9:8472")
			want := map[drop.Reason]uint64{}
			deliver := func(from netip.AddrPort, r drop.Reason, frame []byte) {
				t.Helper()
				if err := b.conn.Deliver(from, frame); err != nil {
					t.Fatal(err)
				}
				want[r]++
			}
			ok := ipv4(a.ip(1), b.ip(2), 64, 1, 100)
			deliver(stranger, drop.UnknownSender, frameFor(t, f, a, b, ok))
			deliver(a.addr, drop.SourceOutsideSubnet, frameFor(t, f, a, b, ipv4("10.5.7.1", b.ip(2), 64, 2, 100)))
			deliver(a.addr, drop.NotLocal, frameFor(t, f, a, b, ipv4(a.ip(1), "10.5.3.1", 64, 3, 100)))
			deliver(a.addr, drop.TooShort, []byte{8, 0, 0})
			if f == vxlanFraming {
				fr := frameFor(t, f, a, b, ok)
				fr[0] = 0x0c // a flag felt and the kernel do not know
				deliver(a.addr, drop.BadHeader, fr)
				fr = frameFor(t, f, a, b, ok)
				fr[6] = 2 // VNI 2
				deliver(a.addr, drop.WrongVNI, fr)
				fr = frameFor(t, f, a, b, ok)
				copy(fr[8:14], []byte{2, 9, 9, 9, 9, 9}) // another VTEP's MAC
				deliver(a.addr, drop.NotForUs, fr)
			} else {
				// flanneld's udp node decrements on receive too: TTL 1 dies here
				deliver(a.addr, drop.TTLExpired, frameFor(t, f, a, b, ipv4(a.ip(1), b.ip(2), 2, 4, 100)))
			}
			expectDrops(t, b, want, func() {
				deliver(a.addr, 0, frameFor(t, f, a, b, ok))
				if got := b.recv(t); !bytes.Equal(got[20:], ok[20:]) || seqOf(got) != 1 {
					t.Fatalf("b's TUN got %x, want the good packet", got)
				}
			})
		})
	}
}
