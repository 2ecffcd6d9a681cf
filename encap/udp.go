package encap

import "github.com/feltnet/felt/internal/drop"

// UDP is flannel's udp framing: the UDP payload is exactly the raw IPv4
// packet, with no header, VNI or magic. As flanneld's C proxy does, both
// Encap and Decap decrement the TTL, so a packet loses 2 per overlay hop.
// felt also carries raw IPv6 packets this way (the hop limit decremented
// likewise), between felt nodes only: flanneld's udp backend is IPv4-only.
// A UDP is immutable after NewUDP and safe for concurrent use.
type UDP struct {
	mtu int
}

// NewUDP returns the framing for peers whose TUN MTU is mtu (flanneld:
// external MTU − 28). flanneld receives into a buffer of exactly that size
// and silently truncates anything larger, so Encap refuses larger packets.
func NewUDP(mtu int) *UDP { return &UDP{mtu: mtu} }

// Overhead is 0: the framing adds no bytes of its own.
func (u *UDP) Overhead() int { return 0 }

// MTU returns the largest packet Encap accepts.
func (u *UDP) MTU() int { return u.mtu }

// Encap frames the IPv4 packet buf[off:off+n] for a flanneld udp peer: it
// checks the header, decrements the TTL in place (patching the header
// checksum) and returns buf[off:off+total], total being the IP header's
// length. An IPv6 packet is checked and its hop limit decremented the same
// way (felt only). dst is ignored (the framing has no link layer). Reasons:
// TooShort (n < 20, or < 40 for IPv6, or buf too short), BadIP (not sane
// IPv4 or IPv6), Oversize (n > mtu), TTLExpired (TTL or hop limit would
// reach 0).
func (u *UDP) Encap(buf []byte, off, n int, dst [6]byte) ([]byte, drop.Reason) {
	if off < 0 || n < 0 || off+n > len(buf) {
		return nil, drop.TooShort
	}
	if n > u.mtu {
		return nil, drop.Oversize
	}
	return rawIP(buf[off : off+n])
}

// Decap checks a received datagram as an IPv4 packet (version, IHL, total
// length within the datagram) or an IPv6 one (payload length within the
// datagram), decrements its TTL or hop limit in place as flanneld does, and
// returns pkt[:total]. Reasons: TooShort, BadIP, TTLExpired.
func (u *UDP) Decap(pkt []byte) ([]byte, drop.Reason) { return rawIP(pkt) }

// rawIP checks pkt as IPv4 or IPv6 by its version nibble, decrements its
// TTL or hop limit, and returns it trimmed to the IP header's length.
func rawIP(pkt []byte) ([]byte, drop.Reason) {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		total, r := ipv6Len(pkt)
		if r != drop.OK {
			return nil, r
		}
		if pkt[7] <= 1 {
			return nil, drop.TTLExpired
		}
		pkt[7]-- // IPv6 has no header checksum
		return pkt[:total], drop.OK
	}
	total, r := ipv4Len(pkt)
	if r != drop.OK {
		return nil, r
	}
	if r := decTTL(pkt); r != drop.OK {
		return nil, r
	}
	return pkt[:total], drop.OK
}
