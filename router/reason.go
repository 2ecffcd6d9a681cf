package router

import "github.com/feltnet/felt/encap"

// Reason says why the router dropped a packet. Values below
// encap.NumReasons are encap's reasons (a framing refused the packet); the
// rest are the router's own.
type Reason uint8

const (
	// NoRoute: outbound, no peer's subnet holds the inner destination.
	NoRoute Reason = Reason(encap.NumReasons) + iota
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
	// TUNShortRead: outbound, the TUN returned a frame shorter than its
	// virtio header.
	TUNShortRead
	// TUNBadHeader: outbound, the TUN returned a frame whose virtio header
	// does not fit its packet.
	TUNBadHeader
	// TUNBadGSO: outbound, a TUN super-packet could not be split into
	// segments that fit a buffer.
	TUNBadGSO
	// BadChecksum: inbound, the inner TCP/UDP checksum is neither correct nor
	// the bare pseudo-header sum (or an IPv6 UDP checksum is 0): the packet
	// was damaged before the outer checksum was computed, or that was 0.
	BadChecksum
	// BadIPChecksum: inbound, the inner IPv4 header checksum is wrong.
	BadIPChecksum
	// NumReasons is the number of reasons, for arrays indexed by Reason.
	NumReasons
)

var ownNames = [...]string{
	NoRoute - NoRoute:             "no_route",
	OwnSubnet - NoRoute:           "own_subnet",
	UnknownSender - NoRoute:       "unknown_sender",
	SourceOutsideSubnet - NoRoute: "source_outside_subnet",
	NotLocal - NoRoute:            "not_local",
	SendFailed - NoRoute:          "send_failed",
	WriteFailed - NoRoute:         "write_failed",
	TUNShortRead - NoRoute:        "tun_short_read",
	TUNBadHeader - NoRoute:        "tun_bad_header",
	TUNBadGSO - NoRoute:           "tun_bad_gso",
	BadChecksum - NoRoute:         "bad_checksum",
	BadIPChecksum - NoRoute:       "bad_ip_checksum",
}

// reasonNamed returns the Reason whose String is name.
func reasonNamed(name string) (Reason, bool) {
	for r := Reason(0); r < NumReasons; r++ {
		if r.String() == name {
			return r, true
		}
	}
	return 0, false
}

// String returns a stable snake_case name for metrics and logs.
func (r Reason) String() string {
	if r < NoRoute {
		return encap.Reason(r).String()
	}
	if r < NumReasons {
		return ownNames[r-NoRoute]
	}
	return "unknown"
}
