package encap_test

import (
	"testing"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
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
	for name, f := range map[string]func() encap.Reason{
		"vxlan encap": func() encap.Reason { _, r := tx.Encap(buf, encap.Headroom, len(pkt), macB); return r },
		"vxlan decap": func() encap.Reason { _, r := rx.Decap(frame); return r },
		"udp encap": func() encap.Reason {
			udpBuf[encap.Headroom+8] = 64 // keep the TTL from running out
			_, r := u.Encap(udpBuf, encap.Headroom, len(pkt), macB)
			return r
		},
		"udp decap": func() encap.Reason {
			udpBuf[encap.Headroom+8] = 64
			_, r := u.Decap(udpBuf[encap.Headroom:])
			return r
		},
		"inner addrs": func() encap.Reason {
			_, ok1 := encap.InnerSrc(pkt)
			_, ok2 := encap.InnerDst(v6)
			if !ok1 || !ok2 {
				return encap.BadIP
			}
			return encap.OK
		},
	} {
		var r encap.Reason
		allocs := testing.AllocsPerRun(1000, func() { r = f() })
		if r != encap.OK {
			t.Errorf("%s: %v, want ok", name, r)
		}
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, allocs)
		}
	}
}
