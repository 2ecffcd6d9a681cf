// Package encaptest holds helpers for tests of encap and its users: packet
// builders and checksum checks. It does not import encap, so encap's own
// in-package tests can use it.
package encaptest

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 returns a 20-byte-header IPv4 packet from src to dst with the given
// TTL, protocol and payload, its header checksum set. It panics if src or
// dst is not IPv4 (a test bug).
func IPv4(src, dst netip.Addr, ttl, proto uint8, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	binary.BigEndian.PutUint16(p[4:6], 0x1234) // id
	p[8], p[9] = ttl, proto
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], Checksum(p[:20]))
	copy(p[20:], payload)
	return p
}

// IPv6 returns an IPv6 packet from src to dst with the given hop limit,
// next header and payload.
func IPv6(src, dst netip.Addr, hops, next uint8, payload []byte) []byte {
	p := make([]byte, 40+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(len(payload)))
	p[6], p[7] = next, hops
	s, d := src.As16(), dst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	copy(p[40:], payload)
	return p
}

// Checksum is the Internet checksum (RFC 1071) of b, computed from scratch.
func Checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// IPv4HeaderValid reports whether the IPv4 header at the start of pkt has a
// correct checksum (the sum over the header, checksum included, is all ones).
func IPv4HeaderValid(pkt []byte) bool {
	if len(pkt) < 20 {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || ihl > len(pkt) {
		return false
	}
	return Checksum(pkt[:ihl]) == 0
}

// Headroomed copies pkt into a fresh buffer after headroom bytes and returns
// the buffer, as a TUN read at offset headroom would leave it.
func Headroomed(headroom int, pkt []byte) []byte {
	buf := make([]byte, headroom+len(pkt))
	copy(buf[headroom:], pkt)
	return buf
}
