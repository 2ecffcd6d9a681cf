package encap

import (
	"encoding/binary"

	"github.com/feltnet/felt/internal/drop"
)

const (
	vxlanHeader = 8
	ethHeader   = 14
	// VXLANOverhead is the VXLAN header plus the inner Ethernet header.
	VXLANOverhead = vxlanHeader + ethHeader

	vxlanFlagI    = 0x08 // "VNI present", the only flag flannel's kernel peers accept
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	maxVNI        = 1<<24 - 1
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// VXLAN is flannel's vxlan framing, as a kernel vxlan device (flannel.<VNI>)
// sends and accepts it:
//
//	08 00 00 00 | VNI (24 bits) | 00 | dst MAC | src MAC | EtherType | IP packet
//
// A VXLAN is immutable after NewVXLAN and safe for concurrent use.
type VXLAN struct {
	hdr   [vxlanHeader]byte // the 8 header bytes every frame carries
	local [6]byte
	// local6 is the MAC for IPv6 inner packets: flanneld gives its IPv6
	// device (flannel-v6.<VNI>) a MAC of its own, published in
	// BackendV6Data. NewVXLAN makes it equal to local.
	local6 [6]byte
}

// NewVXLAN returns the framing for network vni (only its low 24 bits are
// used; flannel's default is 1) and local, our VtepMAC as published in the lease.
func NewVXLAN(vni uint32, local [6]byte) *VXLAN {
	return NewVXLANDual(vni, local, local)
}

// NewVXLANDual is NewVXLAN for a dual-stack node: IPv4 inner packets carry
// local4 (flannel.<VNI>'s MAC, BackendData) and IPv6 ones local6
// (flannel-v6.<VNI>'s, BackendV6Data), as source in Encap and as the
// destination Decap accepts.
func NewVXLANDual(vni uint32, local4, local6 [6]byte) *VXLAN {
	v := &VXLAN{local: local4, local6: local6}
	v.hdr[0] = vxlanFlagI
	binary.BigEndian.PutUint32(v.hdr[4:8], (vni&maxVNI)<<8)
	return v
}

// Overhead is the number of bytes Encap writes in front of the packet: 22.
func (v *VXLAN) Overhead() int { return VXLANOverhead }

// Encap writes the VXLAN and Ethernet headers in place into buf[off-22:off]
// (Ethernet dst = dst, the peer's VtepMAC for the packet's family; src = our
// MAC for that family; EtherType from the IP version) and returns the frame buf[off-22 : off+n], which aliases buf.
// buf[off:off+n] is the IP packet; it is checked for a sane IP header, not
// modified. TooShort if off < 22 or buf is shorter than off+n; BadIP if the
// packet is not sane IPv4 or IPv6.
func (v *VXLAN) Encap(buf []byte, off, n int, dst [6]byte) ([]byte, drop.Reason) {
	if off < VXLANOverhead || n < 0 || off+n > len(buf) {
		return nil, drop.TooShort
	}
	pkt := buf[off : off+n]
	var etherType uint16
	var r drop.Reason
	src := &v.local
	if n > 0 && pkt[0]>>4 == 6 {
		etherType = etherTypeIPv6
		src = &v.local6
		_, r = ipv6Len(pkt)
	} else {
		etherType = etherTypeIPv4
		_, r = ipv4Len(pkt)
	}
	if r != drop.OK {
		return nil, r
	}
	h := buf[off-VXLANOverhead : off]
	copy(h[0:8], v.hdr[:])
	copy(h[8:14], dst[:])
	copy(h[14:20], src[:])
	binary.BigEndian.PutUint16(h[20:22], etherType)
	return buf[off-VXLANOverhead : off+n], drop.OK
}

// Decap validates a received VXLAN datagram the way a kernel vxlan device
// does, and returns the inner IP packet as a subslice of frame (no copy),
// trimmed to the IP header's length (Ethernet padding dropped). frame is
// not modified. The checks, in order:
//   - TooShort: fewer than 8+14+20 bytes, or an IPv6 EtherType with fewer
//     than 40 bytes of inner packet;
//   - BadHeader: the flags byte is not exactly 0x08 or a reserved bit is set;
//   - WrongVNI: the VNI is not ours;
//   - NotForUs: the inner destination MAC is neither our MAC for the
//     EtherType's family nor broadcast;
//   - LoopMAC: the inner source MAC is that MAC;
//   - BadIP: the EtherType is not IPv4/IPv6, or the IP header disagrees
//     with it or with the frame's length.
func (v *VXLAN) Decap(frame []byte) ([]byte, drop.Reason) {
	if len(frame) < VXLANOverhead+ipv4MinHeader {
		return nil, drop.TooShort
	}
	if frame[0] != vxlanFlagI || frame[1]|frame[2]|frame[3]|frame[7] != 0 {
		return nil, drop.BadHeader
	}
	if [3]byte(frame[4:7]) != [3]byte(v.hdr[4:7]) {
		return nil, drop.WrongVNI
	}
	eth := frame[vxlanHeader:VXLANOverhead]
	local := v.local
	if binary.BigEndian.Uint16(eth[12:14]) == etherTypeIPv6 {
		local = v.local6
	}
	if dst := [6]byte(eth[0:6]); dst != local && dst != broadcastMAC {
		return nil, drop.NotForUs
	}
	if [6]byte(eth[6:12]) == local {
		return nil, drop.LoopMAC
	}
	inner := frame[VXLANOverhead:]
	var n int
	var r drop.Reason
	switch binary.BigEndian.Uint16(eth[12:14]) {
	case etherTypeIPv4:
		n, r = ipv4Len(inner)
	case etherTypeIPv6:
		n, r = ipv6Len(inner)
	default:
		return nil, drop.BadIP
	}
	if r != drop.OK {
		return nil, r
	}
	return inner[:n], drop.OK
}
