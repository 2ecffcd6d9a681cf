package tun

import (
	"encoding/binary"
	"testing"

	"github.com/feltnet/felt/internal/drop"
)

// buildPacket makes an IPv4 or IPv6 TCP/UDP packet with the checksum in
// the given form (0 complete, 1 bare pseudo-header sum, 2 zero), computed
// with the RFC 1071 reference, not with the code under test.
//
// addrs, if not empty, overwrites the source and destination addresses
// (cycled): some address pairs bring the running sum close to 2^64, where a
// lost carry shows.
func buildPacket(v6, tcp bool, payload []byte, form uint8, addrs []byte) []byte {
	l4, l4Hdr, proto := 20, 8, byte(17)
	if v6 {
		l4 = 40
	}
	if tcp {
		l4Hdr, proto = 20, 6
	}
	p := make([]byte, l4+l4Hdr+len(payload))
	if v6 {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
		p[6], p[7] = proto, 64
		p[8], p[23], p[24], p[39] = 0xfd, 1, 0xfd, 2
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[8], p[9] = 64, proto
		copy(p[12:], []byte{10, 5, 9, 9, 10, 5, 3, 0})
	}
	if len(addrs) > 0 {
		a := p[12:20]
		if v6 {
			a = p[8:40]
		}
		for i := range a {
			a[i] = addrs[i%len(addrs)]
		}
	}
	if !v6 {
		binary.BigEndian.PutUint16(p[10:], ^naiveSum(p[:20]))
	}
	binary.BigEndian.PutUint16(p[l4:], 4000)
	binary.BigEndian.PutUint16(p[l4+2:], 5000)
	field := l4 + 6
	if tcp {
		p[l4+12], p[l4+13] = 5<<4, tcpACK
		field = l4 + 16
	} else {
		binary.BigEndian.PutUint16(p[l4+4:], uint16(len(p)-l4))
	}
	copy(p[l4+l4Hdr:], payload)
	pseudo := refPseudo(p, l4, proto, v6)
	switch form % 3 {
	case 0:
		c := ^naiveSum(append(pseudo, p[l4:]...))
		if !tcp && c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(p[field:], c)
	case 1:
		binary.BigEndian.PutUint16(p[field:], naiveSum(pseudo))
	}
	return p
}

// refPseudo is the pseudo-header as bytes (RFC 768/793, RFC 8200 8.1).
func refPseudo(p []byte, l4 int, proto byte, v6 bool) []byte {
	n := len(p) - l4
	if v6 {
		b := append(append([]byte{}, p[8:40]...), 0, 0, byte(n>>8), byte(n), 0, 0, 0, proto)
		return b
	}
	return append(append([]byte{}, p[12:20]...), 0, proto, byte(n>>8), byte(n))
}

// refVerdict is the accept rule written plainly over the reference sum.
func refVerdict(p []byte, l4 int, proto byte, v6 bool) (drop.Reason, sumForm) {
	if !v6 && naiveSum(p[:l4]) != 0xffff {
		return drop.BadIPChecksum, 0
	}
	field := l4 + 16
	if proto == 17 {
		field = l4 + 6
	}
	got := binary.BigEndian.Uint16(p[field:])
	if proto == 17 && got == 0 {
		return drop.OK, sumAbsent // the kernel applies its own rule
	}
	pseudo := refPseudo(p, l4, proto, v6)
	if got == naiveSum(pseudo) {
		return drop.OK, sumPseudo
	}
	if naiveSum(append(pseudo, p[l4:]...)) == 0xffff {
		return drop.OK, sumComplete
	}
	return drop.BadChecksum, 0
}

// FuzzVerify: for packets built right and then damaged in one byte (or
// not), inspect's verdict equals the plain reference's.
func FuzzVerify(f *testing.F) {
	f.Add(false, true, []byte("hello, world"), uint8(0), uint16(0), uint8(0), []byte(nil))
	f.Add(false, false, []byte("odd"), uint8(1), uint16(30), uint8(1), []byte(nil))
	f.Add(true, false, []byte{}, uint8(2), uint16(0), uint8(0), []byte(nil))
	f.Add(true, true, make([]byte, 1400), uint8(0), uint16(700), uint8(0x80), []byte(nil))
	f.Add(false, true, []byte{0xff, 0xff, 0xff}, uint8(0), uint16(10), uint8(0xff), []byte(nil))
	// fd00::1 → fd00::5ff:ffff:ffff:fffd: the address words sum to just
	// below 2^64 (a carry pseudoSum once lost).
	f.Add(true, false, []byte("hello"), uint8(0), uint16(0), uint8(0),
		[]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
			0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0xff, 0xff, 0xff, 0xff, 0xfd})
	f.Fuzz(func(t *testing.T, v6, tcp bool, payload []byte, form uint8, at uint16, xor uint8, addrs []byte) {
		if len(payload) > 9000 {
			payload = payload[:9000]
		}
		p := buildPacket(v6, tcp, payload, form, addrs)
		p[int(at)%len(p)] ^= xor
		in := inspect(p)
		if !in.ok && in.drop == drop.OK {
			return // not parsed as TCP/UDP (the damage hit a length or type): written as is
		}
		proto := p[9]
		if v6 {
			proto = p[6]
		}
		want, sum := refVerdict(p, in.l4, proto, in.v6)
		if want != in.drop || (want == drop.OK && sum != in.sum) {
			t.Fatalf("inspect: drop %v form %d; reference: drop %v form %d\n% x", in.drop, in.sum, want, sum, p)
		}
		if in.ok != (want == drop.OK) {
			t.Fatalf("ok %t with drop %v", in.ok, in.drop)
		}
	})
}
