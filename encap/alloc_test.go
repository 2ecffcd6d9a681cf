package encap_test

import (
	"testing"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

// The framing sits on the per-packet path: it must not allocate.
func TestFramingAllocs(t *testing.T) {
	pkt := encaptest.IPv4(srcA, dstB, 255, 6, make([]byte, 1400))
	v6 := encaptest.IPv6(src6, dst6, 64, 6, make([]byte, 1400))
	buf := encaptest.Headroomed(encap.Headroom, pkt)
	tx, rx := encap.NewVXLAN(1, macA), encap.NewVXLAN(1, macB)
	frame, _ := tx.Encap(buf, encap.Headroom, len(pkt), macB)
	u := encap.NewUDP(1500)
	udpBuf := encaptest.Headroomed(encap.Headroom, pkt)
	for name, f := range map[string]func() drop.Reason{
		"vxlan encap": func() drop.Reason { _, r := tx.Encap(buf, encap.Headroom, len(pkt), macB); return r },
		"vxlan decap": func() drop.Reason { _, r := rx.Decap(frame); return r },
		"udp encap": func() drop.Reason {
			udpBuf[encap.Headroom+8] = 64 // keep the TTL from running out
			_, r := u.Encap(udpBuf, encap.Headroom, len(pkt), macB)
			return r
		},
		"udp decap": func() drop.Reason {
			udpBuf[encap.Headroom+8] = 64
			_, r := u.Decap(udpBuf[encap.Headroom:])
			return r
		},
		"inner addrs": func() drop.Reason {
			_, ok1 := encap.InnerSrc(pkt)
			_, ok2 := encap.InnerDst(v6)
			if !ok1 || !ok2 {
				return drop.BadIP
			}
			return drop.OK
		},
	} {
		var r drop.Reason
		allocs := testing.AllocsPerRun(1000, func() { r = f() })
		if r != drop.OK {
			t.Errorf("%s: %v, want ok", name, r)
		}
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, allocs)
		}
	}
}
