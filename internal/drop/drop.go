// Package drop names why felt's packet path dropped a packet. One Reason
// serves encap's framings, felt's TUN device and the router, so every
// per-reason counter array is indexed by it and each reason has one name:
// the one /metrics, `felt status` and the drop log show.
package drop

// Reason says why a packet was dropped; OK (0) means it was not. The names
// returned by String are stable: they label metrics and logs.
type Reason uint8

const (
	OK Reason = iota

	// A framing (encap) refused the packet.

	TooShort   // shorter than the fixed headers need, or no headroom to write them
	BadHeader  // VXLAN flags or reserved bits wrong
	WrongVNI   // VXLAN network identifier is not ours
	NotForUs   // inner destination MAC is neither ours nor broadcast
	LoopMAC    // inner source MAC is ours: our own frame came back
	BadIP      // not a sane IPv4/IPv6 packet (version, header or length fields)
	Oversize   // larger than the peer accepts
	TTLExpired // TTL reached zero on decrement

	// The router's own.

	// NoRoute: outbound, no peer's subnet holds the inner destination.
	NoRoute
	// OwnSubnet: outbound, the inner destination is in our own subnet, so the
	// TUN sent us what the kernel should have delivered locally.
	OwnSubnet
	// UnknownSender: inbound, the outer source IP is no peer's public IP.
	UnknownSender
	// SourceOutsideSubnet: inbound, the inner source is not in the subnet
	// the sending peer leases (spoofed or misrouted).
	SourceOutsideSubnet
	// NotLocal: inbound, the inner destination is not in our own subnet.
	NotLocal
	// SendFailed: outbound, Conn.WriteBatch reported an error. It does not
	// say how many packets failed: each error counts as one (a lower bound).
	SendFailed
	// WriteFailed: inbound, Device.Write reported an error; the packets it
	// did not hand over and did not drop itself.
	WriteFailed

	// felt's TUN device dropped it (tun.Device counts these itself).

	// TUNShortRead: Read got a frame shorter than its virtio header.
	TUNShortRead
	// TUNBadHeader: Read got a frame whose virtio header does not fit the
	// packet (a partial checksum outside it).
	TUNBadHeader
	// TUNBadGSO: Read got a super-packet that could not be split (bad
	// headers, an unknown GSO type, no segment size, more segments than a
	// buffer takes).
	TUNBadGSO
	// BadChecksum: Write got a TCP/UDP packet whose checksum is neither
	// correct nor the bare pseudo-header sum (or an IPv6 UDP checksum of 0):
	// it was damaged before the outer checksum was computed, or that was 0.
	BadChecksum
	// BadIPChecksum: Write got an IPv4 packet with a wrong header checksum.
	BadIPChecksum

	// NumReasons is the number of reasons, for arrays indexed by Reason.
	NumReasons
)

var names = [NumReasons]string{
	OK:                  "ok",
	TooShort:            "too_short",
	BadHeader:           "bad_header",
	WrongVNI:            "wrong_vni",
	NotForUs:            "not_for_us",
	LoopMAC:             "loop_mac",
	BadIP:               "bad_ip",
	Oversize:            "oversize",
	TTLExpired:          "ttl_expired",
	NoRoute:             "no_route",
	OwnSubnet:           "own_subnet",
	UnknownSender:       "unknown_sender",
	SourceOutsideSubnet: "source_outside_subnet",
	NotLocal:            "not_local",
	SendFailed:          "send_failed",
	WriteFailed:         "write_failed",
	TUNShortRead:        "tun_short_read",
	TUNBadHeader:        "tun_bad_header",
	TUNBadGSO:           "tun_bad_gso",
	BadChecksum:         "bad_checksum",
	BadIPChecksum:       "bad_ip_checksum",
}

// String returns the reason's snake_case name, or "unknown".
func (r Reason) String() string {
	if r < NumReasons {
		return names[r]
	}
	return "unknown"
}
