package tun

// Drop says why the device dropped a frame or packet instead of passing it
// on. Read and Write count their drops per reason; the caller collects them
// with ReadDrops and WriteDrops.
type Drop uint8

const (
	DropNone Drop = iota
	// DropShortRead: Read got a frame shorter than its virtio header.
	DropShortRead
	// DropBadHeader: Read got a frame whose virtio header does not fit the
	// packet (a partial checksum outside it).
	DropBadHeader
	// DropBadGSO: Read got a super-packet that could not be split (bad
	// headers, an unknown GSO type, no segment size, more segments than a
	// buffer takes).
	DropBadGSO
	// DropBadChecksum: Write got a TCP/UDP packet whose checksum is neither
	// correct nor the bare pseudo-header sum.
	DropBadChecksum
	// DropBadIPChecksum: Write got an IPv4 packet with a wrong header
	// checksum.
	DropBadIPChecksum
	// NumDrops is the number of reasons, for arrays indexed by Drop.
	NumDrops
)

var dropNames = [NumDrops]string{
	DropNone:          "none",
	DropShortRead:     "tun_short_read",
	DropBadHeader:     "tun_bad_header",
	DropBadGSO:        "tun_bad_gso",
	DropBadChecksum:   "bad_checksum",
	DropBadIPChecksum: "bad_ip_checksum",
}

// String returns the reason's stable snake_case name, as metrics show it.
func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "unknown"
}
