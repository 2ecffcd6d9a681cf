package encap

import (
	"encoding/binary"
	"net/netip"

	"github.com/feltnet/felt/internal/drop"
)

const (
	ipv4MinHeader = 20
	ipv6Header    = 40
)

// ipv4Len checks the IPv4 header at the start of pkt and returns the
// packet's total length, which is within pkt.
func ipv4Len(pkt []byte) (int, drop.Reason) {
	if len(pkt) < ipv4MinHeader {
		return 0, drop.TooShort
	}
	if pkt[0]>>4 != 4 {
		return 0, drop.BadIP
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < ipv4MinHeader || total < ihl || total > len(pkt) {
		return 0, drop.BadIP
	}
	return total, drop.OK
}

// ipv6Len checks the fixed IPv6 header at the start of pkt and returns the
// packet's total length, which is within pkt. Jumbograms (payload length 0
// with a hop-by-hop option) are not supported: they read as a bare header.
func ipv6Len(pkt []byte) (int, drop.Reason) {
	if len(pkt) < ipv6Header {
		return 0, drop.TooShort
	}
	if pkt[0]>>4 != 6 {
		return 0, drop.BadIP
	}
	total := ipv6Header + int(binary.BigEndian.Uint16(pkt[4:6]))
	if total > len(pkt) {
		return 0, drop.BadIP
	}
	return total, drop.OK
}

// decTTL decrements the TTL of the IPv4 packet pkt (header already checked)
// and patches the header checksum incrementally, as flanneld's udp proxy
// does on both send and receive. A packet whose TTL would reach 0 is left
// untouched and reported as TTLExpired.
func decTTL(pkt []byte) drop.Reason {
	ttl := pkt[8]
	if ttl <= 1 {
		return drop.TTLExpired
	}
	pkt[8] = ttl - 1
	// TTL shares a 16-bit word with the protocol byte; only its high byte moves.
	old := uint16(ttl)<<8 | uint16(pkt[9])
	csum := binary.BigEndian.Uint16(pkt[10:12])
	binary.BigEndian.PutUint16(pkt[10:12], patchChecksum(csum, old, old-0x0100))
	return drop.OK
}

// patchChecksum updates an Internet checksum hc after one 16-bit word of the
// covered data changed from old to new (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
func patchChecksum(hc, old, new uint16) uint16 {
	sum := uint32(^hc) + uint32(^old) + uint32(new)
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	return ^uint16(sum)
}

// InnerSrc returns the source address of the IPv4 or IPv6 packet pkt, and
// false if pkt is too short for its version's header or is neither version.
// It and InnerDst are written out with constant offsets: one helper taking
// the offsets measured 1.25 → 1.75 ns per call (BenchmarkInnerDst), its
// bounds checks no longer provable.
func InnerSrc(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) >= ipv4MinHeader {
			return netip.AddrFrom4([4]byte(pkt[12:16])), true
		}
	case 6:
		if len(pkt) >= ipv6Header {
			return netip.AddrFrom16([16]byte(pkt[8:24])), true
		}
	}
	return netip.Addr{}, false
}

// InnerDst returns the destination address of the IPv4 or IPv6 packet pkt,
// and false if pkt is too short for its version's header or is neither version.
func InnerDst(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) >= ipv4MinHeader {
			return netip.AddrFrom4([4]byte(pkt[16:20])), true
		}
	case 6:
		if len(pkt) >= ipv6Header {
			return netip.AddrFrom16([16]byte(pkt[24:40])), true
		}
	}
	return netip.Addr{}, false
}
