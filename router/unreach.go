package router

import (
	"encoding/binary"
	"time"

	"github.com/feltnet/felt/encap"
)

// ICMP destination unreachable for overlay packets that no lease covers, as
// flanneld's udp backend answered: the sender learns at once that the
// address is not there (a TCP connect fails with ENETUNREACH) instead of
// retransmitting into a black hole. The reply is written back into the TUN
// from the outbound goroutine, at most unreachBurst in a row and
// unreachPerSec on average, with no allocation.

const (
	unreachPerSec = 100
	unreachBurst  = 20

	icmpDestUnreach = 3
	icmpNetUnreach  = 0
	// the largest reply: IPv4 header, ICMP header, the offender's header
	// with options (60) and 8 bytes of its payload
	unreachMax = 20 + 8 + 60 + 8
)

// injectorSource is what the reply needs of the Device (tun.Device has it):
// a writer of single packets that may run while the inbound loop Writes.
type injectorSource interface {
	NewInjector() func(buf []byte, offset int) error
}

// unreach builds and sends the replies; it belongs to the outbound goroutine.
type unreach struct {
	inject func(buf []byte, offset int) error // nil: the Device cannot take them
	now    func() time.Time
	buf    []byte // encap.Headroom + unreachMax; the reply at buf[encap.Headroom:]

	tokens float64
	last   time.Time
	sent   uint64 // replies written
	capped uint64 // replies skipped by the rate limit
}

func newUnreach(e *Engine, dev Device) unreach {
	u := unreach{now: e.cfg.Now, tokens: unreachBurst}
	if s, ok := dev.(injectorSource); ok {
		u.inject = s.NewInjector()
		u.buf = make([]byte, encap.Headroom+unreachMax)
	}
	return u
}

// reply answers pkt, an IPv4 packet to dst with no route, with ICMP
// net-unreachable from dst, if the rate limit allows. Not answered, as RFC
// 1812 says: ICMP errors, non-first fragments, and packets from an
// unspecified, multicast or broadcast source. The reply's source is the
// unreachable address rather than the TUN's own: a packet arriving on the
// TUN from a local address is dropped by the kernel as a martian, and the
// host's own connections (source: the TUN address) are the common case.
func (u *unreach) reply(pkt []byte) {
	if u.inject == nil || !unreachable(pkt) || !u.allow() {
		return
	}
	ihl := int(pkt[0]&0x0f) * 4
	quote := min(len(pkt), ihl+8)
	r := u.buf[encap.Headroom : encap.Headroom+20+8+quote]
	r[0], r[1] = 0x45, 0
	binary.BigEndian.PutUint16(r[2:], uint16(len(r)))
	binary.BigEndian.PutUint32(r[4:], 0) // id, flags, fragment offset
	r[8], r[9] = 64, 1                   // TTL, ICMP
	r[10], r[11] = 0, 0
	copy(r[12:16], pkt[16:20]) // from the unreachable address
	copy(r[16:20], pkt[12:16]) // to the sender
	binary.BigEndian.PutUint16(r[10:], checksum(r[:20]))
	m := r[20:]
	m[0], m[1], m[2], m[3] = icmpDestUnreach, icmpNetUnreach, 0, 0
	binary.BigEndian.PutUint32(m[4:], 0)
	copy(m[8:], pkt[:quote])
	binary.BigEndian.PutUint16(m[2:], checksum(m))
	if u.inject(u.buf[:encap.Headroom+len(r)], encap.Headroom) == nil {
		u.sent++
	}
}

// unreachable reports whether pkt may be answered with an ICMP error.
func unreachable(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl {
		return false
	}
	if binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 { // not the first fragment
		return false
	}
	src, dst := pkt[12:16], pkt[16:20]
	if src[0] == 0 || src[0] >= 224 || (src[0] == 127) {
		return false // unspecified, loopback, multicast, broadcast or class E
	}
	if dst[0] >= 224 {
		// Multicast or broadcast (RFC 1812 4.3.2.7): the reply, sent from
		// the unreachable address, would have that as its source.
		return false
	}
	if pkt[9] == 1 && len(pkt) > ihl {
		switch pkt[ihl] { // ICMP type: no error about an error
		case 3, 4, 5, 11, 12:
			return false
		}
	}
	return true
}

// allow takes a token from the bucket (unreachBurst deep, unreachPerSec
// refill).
func (u *unreach) allow() bool {
	now := u.now()
	if !u.last.IsZero() {
		u.tokens = min(unreachBurst, u.tokens+now.Sub(u.last).Seconds()*unreachPerSec)
	}
	u.last = now
	if u.tokens < 1 {
		u.capped++
		return false
	}
	u.tokens--
	return true
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
