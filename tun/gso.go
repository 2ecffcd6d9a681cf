package tun

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/feltnet/felt/tun/vnet"
)

// The virtio_net_hdr a TUN opened with IFF_VNET_HDR puts before (reads) and
// expects before (writes) every packet; little-endian.
const (
	VirtioHdrLen = vnet.HdrLen

	virtioNeedsCsum = 1 // flags: the L4 checksum is partial (pseudo-header only)

	gsoNone  = 0
	gsoTCPv4 = 1
	gsoTCPv6 = 4
	gsoUDPL4 = 5
	gsoECN   = 0x80
)

type virtioHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func parseVirtioHdr(b []byte) virtioHdr {
	return virtioHdr{
		flags: b[0], gsoType: b[1],
		hdrLen:     binary.LittleEndian.Uint16(b[2:]),
		gsoSize:    binary.LittleEndian.Uint16(b[4:]),
		csumStart:  binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

var errBadGSO = errors.New("tun: malformed GSO packet from the kernel")

// finishCsum completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the
// field holds the pseudo-header sum; the sum over csumStart.. gives the rest.
func finishCsum(pkt []byte, h virtioHdr) error {
	start, field := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if start >= len(pkt) || field+2 > len(pkt) {
		return fmt.Errorf("%w: checksum start %d offset %d in a %d-byte packet", errBadGSO, h.csumStart, h.csumOffset, len(pkt))
	}
	c := ^csumFold(csumAdd(0, pkt[start:]))
	if c == 0 && h.csumOffset == 6 {
		c = 0xffff // UDP: 0 means "no checksum" (and IPv6 receivers drop it)
	}
	binary.BigEndian.PutUint16(pkt[field:], c)
	return nil
}

// segments says how many segments split(pkt) will produce.
func segments(pkt []byte, h virtioHdr) (int, error) {
	l4, hdrLen, err := gsoHeaders(pkt, h)
	if err != nil {
		return 0, err
	}
	_ = l4
	pay := len(pkt) - hdrLen
	if h.gsoSize == 0 || pay <= 0 {
		return 0, fmt.Errorf("%w: gso size %d, payload %d", errBadGSO, h.gsoSize, pay)
	}
	return (pay + int(h.gsoSize) - 1) / int(h.gsoSize), nil
}

// gsoHeaders returns the L4 offset and the length of all headers.
func gsoHeaders(pkt []byte, h virtioHdr) (l4, hdrLen int, err error) {
	l4 = int(h.csumStart)
	if len(pkt) < 20 || l4 < 20 || l4+8 > len(pkt) {
		return 0, 0, fmt.Errorf("%w: transport offset %d in a %d-byte packet", errBadGSO, l4, len(pkt))
	}
	switch h.gsoType &^ gsoECN {
	case gsoTCPv4, gsoTCPv6:
		if l4+20 > len(pkt) {
			return 0, 0, errBadGSO
		}
		hdrLen = l4 + int(pkt[l4+12]>>4)*4
		if hdrLen < l4+20 || hdrLen > len(pkt) {
			return 0, 0, fmt.Errorf("%w: TCP header length", errBadGSO)
		}
	case gsoUDPL4:
		hdrLen = l4 + 8
	default:
		return 0, 0, fmt.Errorf("%w: gso type %d", errBadGSO, h.gsoType)
	}
	return l4, hdrLen, nil
}

// split cuts a GSO super-packet into MSS-sized packets with complete
// headers and checksums, as the kernel would have sent them. Segment 0 is
// written in place: out[0] aliases pkt's start. Segments 1.. are copied to
// bufs[j][offset:]; sizes[j] receives each length. len(bufs) must be at least
// segments(pkt, h); hdr is scratch of at least 128 bytes.
func split(pkt []byte, h virtioHdr, bufs [][]byte, sizes []int, offset int, hdr []byte) (int, error) {
	l4, hdrLen, err := gsoHeaders(pkt, h)
	if err != nil {
		return 0, err
	}
	n, err := segments(pkt, h)
	if err != nil {
		return 0, err
	}
	if n > len(bufs) || hdrLen > len(hdr) {
		return 0, fmt.Errorf("%w: %d segments for %d buffers", errBadGSO, n, len(bufs))
	}
	v4 := pkt[0]>>4 == 4
	tcp := h.gsoType&^gsoECN != gsoUDPL4
	copy(hdr, pkt[:hdrLen])
	hdr = hdr[:hdrLen]
	mss := int(h.gsoSize)
	payload := pkt[hdrLen:]
	var id uint16
	var seq uint32
	if v4 {
		id = binary.BigEndian.Uint16(hdr[4:])
	}
	if tcp {
		seq = binary.BigEndian.Uint32(hdr[l4+4:])
	}
	var src, dst []byte
	if v4 {
		src, dst = hdr[12:16], hdr[16:20]
	} else {
		src, dst = hdr[8:24], hdr[24:40]
	}
	proto := uint8(17)
	if tcp {
		proto = 6
	}
	// Build the later segments first: segment 0 overwrites pkt's header.
	for j := n - 1; j >= 0; j-- {
		lo := j * mss
		hi := min(lo+mss, len(payload))
		segLen := hdrLen + hi - lo
		var seg []byte
		if j == 0 {
			seg = pkt[:segLen]
			copy(seg, hdr)
		} else {
			b := bufs[j][offset:]
			if len(b) < segLen {
				return 0, fmt.Errorf("%w: buffer of %d bytes for a %d-byte segment", errBadGSO, len(b), segLen)
			}
			seg = b[:segLen]
			copy(seg, hdr)
			copy(seg[hdrLen:], payload[lo:hi])
		}
		sizes[j] = segLen
		if v4 {
			binary.BigEndian.PutUint16(seg[2:], uint16(segLen))
			binary.BigEndian.PutUint16(seg[4:], id+uint16(j))
			seg[10], seg[11] = 0, 0
			binary.BigEndian.PutUint16(seg[10:], ^csumFold(csumAdd(0, seg[:l4])))
		} else {
			binary.BigEndian.PutUint16(seg[4:], uint16(segLen-40))
		}
		l4Len := segLen - l4
		if tcp {
			binary.BigEndian.PutUint32(seg[l4+4:], seq+uint32(lo))
			flags := seg[l4+13]
			if j != n-1 {
				flags &^= 0x09 // FIN, PSH only on the last segment
			}
			if j != 0 {
				flags &^= 0x80 // CWR only on the first
			}
			seg[l4+13] = flags
			seg[l4+16], seg[l4+17] = 0, 0
			c := ^csumFold(csumAdd(pseudoSum(src, dst, proto, l4Len), seg[l4:]))
			binary.BigEndian.PutUint16(seg[l4+16:], c)
		} else {
			binary.BigEndian.PutUint16(seg[l4+4:], uint16(l4Len))
			seg[l4+6], seg[l4+7] = 0, 0
			c := ^csumFold(csumAdd(pseudoSum(src, dst, proto, l4Len), seg[l4:]))
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(seg[l4+6:], c)
		}
	}
	return n, nil
}
