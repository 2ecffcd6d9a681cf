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
	// WriteFailed: inbound, Device.Write reported an error; one per joined
	// error (the tun package joins one per failed write).
	WriteFailed
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
