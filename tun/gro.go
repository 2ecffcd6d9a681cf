package tun

import (
	"encoding/binary"

	"github.com/feltnet/felt/internal/drop"
)

// The receive side: checks and coalescing (GRO for TCP and UDP).
//
// Every TCP/UDP packet from a peer has its checksums verified in the one
// pass that parses it (inspect): the outer UDP checksum may be 0 (no
// checksum) or may have been computed over bytes already damaged, so it
// proves nothing. A packet passes with a correct checksum, or with exactly
// the bare pseudo-header sum that a kernel vxlan peer over a virtual
// underlay leaves unfinished (its payload cannot be checked: the kernel
// finishes the sum, as that peer asked); an IPv4 UDP checksum of 0 means
// "none" and passes unchanged. Anything else, and an IPv4 header whose
// checksum is wrong, is dropped and counted. Packets that pass are handed to
// the kernel with a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM, the field
// holding the pseudo-header sum), which the kernel trusts; the TUN ignores
// VIRTIO_NET_HDR_F_DATA_VALID, so that flag would buy nothing.
//
// Consecutive segments of one TCP flow, and datagrams of one UDP flow, are
// written as one super-packet: the first packet's headers, then every
// payload, passed as iovecs so that no payload byte is copied.

// l4Info is what coalescing needs to know about one packet.
type l4Info struct {
	ok      bool        // TCP or UDP in IPv4/IPv6 we understand, checksums verified
	drop    drop.Reason // why it must not be written; drop.OK if it may
	sum     sumForm
	tcp     bool
	v6      bool
	l4      int // transport header offset
	hdrLen  int // all headers (IP + TCP/UDP)
	payload int // transport payload bytes
	seq     uint32
	flags   uint8
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
	tcpECE = 0x40
	tcpCWR = 0x80
)

// sumForm is how a packet that passed verification carries its L4 checksum.
type sumForm uint8

const (
	sumComplete sumForm = iota // a correct, finished checksum
	sumPseudo                  // the bare pseudo-header sum, left for the receiver to finish
	sumAbsent                  // UDP over IPv4 with checksum 0: none
)

// inspect parses pkt's IP and transport headers and verifies the IPv4
// header checksum and the TCP/UDP checksum. A packet it does not understand
// (not TCP/UDP, a fragment, IPv6 extension headers) has ok false and drop
// drop.OK: it is written as it is, and the kernel checks it.
func inspect(pkt []byte) l4Info {
	var in l4Info
	if len(pkt) < 20 {
		return in
	}
	var proto uint8
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			return in
		}
		// Fragments are left alone: only the first has a transport header.
		if binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
			return in
		}
		proto, in.l4 = pkt[9], ihl
	case 6:
		if len(pkt) < 40 || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return in
		}
		proto, in.l4, in.v6 = pkt[6], 40, true // extension headers: not coalesced, see below
	default:
		return in
	}
	switch proto {
	case 6:
		if len(pkt) < in.l4+20 {
			return in
		}
		thl := int(pkt[in.l4+12]>>4) * 4
		if thl < 20 || len(pkt) < in.l4+thl {
			return in
		}
		in.tcp, in.hdrLen = true, in.l4+thl
		in.seq = binary.BigEndian.Uint32(pkt[in.l4+4:])
		in.flags = pkt[in.l4+13]
	case 17:
		if len(pkt) < in.l4+8 || int(binary.BigEndian.Uint16(pkt[in.l4+4:])) != len(pkt)-in.l4 {
			return in
		}
		in.hdrLen = in.l4 + 8
	default:
		return in
	}
	in.payload = len(pkt) - in.hdrLen
	in.sum, in.drop = verify(pkt, in.l4, proto, in.v6)
	in.ok = in.drop == drop.OK
	return in
}

// verify checks the IPv4 header checksum (v4) and the TCP (proto 6) or UDP
// (17) checksum of pkt, whose transport header starts at l4 and whose
// lengths inspect has checked.
func verify(pkt []byte, l4 int, proto uint8, v6 bool) (sumForm, drop.Reason) {
	var src, dst []byte
	if v6 {
		src, dst = pkt[8:24], pkt[24:40]
	} else {
		if csumFold(csumAdd(0, pkt[:l4])) != 0xffff {
			return 0, drop.BadIPChecksum
		}
		src, dst = pkt[12:16], pkt[16:20]
	}
	field := l4 + 16
	if proto == 17 {
		field = l4 + 6
	}
	got := binary.BigEndian.Uint16(pkt[field:])
	if proto == 17 && got == 0 {
		// "No checksum": legal on IPv4; on IPv6 only for sockets that opt
		// in (UDP_NO_CHECK6_RX, RFC 6936). Either way it goes in unchanged
		// and unmarked, so the kernel applies its own rule.
		return sumAbsent, drop.OK
	}
	pseudo := pseudoSum(src, dst, proto, len(pkt)-l4)
	if got == csumFold(pseudo) {
		return sumPseudo, drop.OK
	}
	if csumFold(csumAdd(pseudo, pkt[l4:])) != 0xffff {
		return 0, drop.BadChecksum
	}
	return sumComplete, drop.OK
}

// canAppend says whether packet q (info b) continues the TCP run that starts
// with packet p (info a), whose payloads so far end at sequence next, with
// total bytes so far.
func canAppend(p []byte, a l4Info, q []byte, b l4Info, next uint32, total int) bool {
	// The merged packet's IP length field (IPv4: whole packet; IPv6: all
	// but the fixed header) must still hold it.
	limit := 65535 - a.hdrLen
	if a.v6 {
		limit += 40
	}
	if !b.ok || !b.tcp || a.v6 != b.v6 || b.hdrLen != a.hdrLen || b.seq != next || b.payload == 0 ||
		b.payload > a.payload || total+b.payload > limit {
		return false
	}
	// Only plain ACK (+PSH, which ends the run) segments are merged.
	if b.flags&^(tcpACK|tcpPSH) != 0 || b.flags&tcpACK == 0 {
		return false
	}
	if a.v6 {
		// Same addresses, traffic class/flow label, hop limit, next header.
		if string(p[:4]) != string(q[:4]) || string(p[6:40]) != string(q[6:40]) {
			return false
		}
	} else {
		// Same TOS, TTL, protocol, addresses, DF; options identical.
		if p[1] != q[1] || p[8] != q[8] || p[9] != q[9] || string(p[12:a.l4]) != string(q[12:b.l4]) ||
			(p[6]&0x40) != (q[6]&0x40) {
			return false
		}
	}
	// Ports, ack number, data offset/window and options must match.
	l4 := a.l4
	if string(p[l4:l4+4]) != string(q[l4:l4+4]) || string(p[l4+8:l4+12]) != string(q[l4+8:l4+12]) ||
		p[l4+12] != q[l4+12] || string(p[l4+14:l4+16]) != string(q[l4+14:l4+16]) ||
		string(p[l4+20:a.hdrLen]) != string(q[l4+20:b.hdrLen]) {
		return false
	}
	return true
}

// partialCsum prepares pkt (whose transport header starts at l4) for the
// kernel to finish its checksum: the field gets the pseudo-header sum for
// l4Len transport bytes, and vh the matching virtio header.
func partialCsum(pkt []byte, in l4Info, l4Len int, vh []byte) {
	var src, dst []byte
	proto := uint8(17)
	if in.tcp {
		proto = 6
	}
	if in.v6 {
		src, dst = pkt[8:24], pkt[24:40]
	} else {
		src, dst = pkt[12:16], pkt[16:20]
	}
	field := in.l4 + 6
	if in.tcp {
		field = in.l4 + 16
	}
	binary.BigEndian.PutUint16(pkt[field:], csumFold(pseudoSum(src, dst, proto, l4Len)))
	clear(vh[:VirtioHdrLen])
	vh[0] = virtioNeedsCsum
	binary.LittleEndian.PutUint16(vh[6:], uint16(in.l4))
	binary.LittleEndian.PutUint16(vh[8:], uint16(field-in.l4))
}

// mergeTCPHead rewrites the first packet of a coalesced TCP run of total payload
// bytes (segments of mss, the last maybe shorter, psh from the last) and
// fills the virtio header for a GSO write.
func mergeTCPHead(p []byte, a l4Info, total, mss int, psh bool, vh []byte) {
	l4Len := a.hdrLen - a.l4 + total
	setIPLength(p, a, total)
	if psh {
		p[a.l4+13] |= tcpPSH
	}
	partialCsum(p, a, l4Len, vh)
	vh[1] = gsoTCPv4
	if a.v6 {
		vh[1] = gsoTCPv6
	}
	binary.LittleEndian.PutUint16(vh[2:], uint16(a.hdrLen))
	binary.LittleEndian.PutUint16(vh[4:], uint16(mss))
}

// setIPLength sets the IP length of the run's first packet p to cover its
// headers and total payload bytes (and, for IPv4, the header checksum).
func setIPLength(p []byte, a l4Info, total int) {
	if a.v6 {
		binary.BigEndian.PutUint16(p[4:], uint16(a.hdrLen-40+total))
		return
	}
	binary.BigEndian.PutUint16(p[2:], uint16(a.hdrLen+total))
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], ^csumFold(csumAdd(0, p[:a.l4])))
}

// canAppendUDP says whether datagram q continues the UDP run that starts
// with p: same addresses, ports and IP fields, a payload no longer than the
// first, and room left in 64 KiB.
func canAppendUDP(p []byte, a l4Info, q []byte, b l4Info, total int) bool {
	if !b.ok || b.tcp || b.sum == sumAbsent || a.v6 != b.v6 || b.hdrLen != a.hdrLen || b.payload == 0 || b.payload > a.payload ||
		total+b.payload+a.hdrLen > 65535 {
		return false
	}
	if a.v6 {
		if string(p[:4]) != string(q[:4]) || string(p[6:40]) != string(q[6:40]) {
			return false
		}
	} else if p[1] != q[1] || p[8] != q[8] || p[9] != q[9] || string(p[12:a.l4]) != string(q[12:b.l4]) ||
		(p[6]&0x40) != (q[6]&0x40) {
		return false
	}
	return string(p[a.l4:a.l4+4]) == string(q[b.l4:b.l4+4])
}

// mergeUDPHead rewrites the first datagram of a coalesced UDP run for a
// GSO_UDP_L4 write: lengths cover every payload, the checksum is partial.
func mergeUDPHead(p []byte, a l4Info, total, size int, vh []byte) {
	l4Len := 8 + total
	setIPLength(p, a, total)
	binary.BigEndian.PutUint16(p[a.l4+4:], uint16(l4Len))
	partialCsum(p, a, l4Len, vh)
	vh[1] = gsoUDPL4
	binary.LittleEndian.PutUint16(vh[2:], uint16(a.hdrLen))
	binary.LittleEndian.PutUint16(vh[4:], uint16(size))
}
