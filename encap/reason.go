package encap

// Reason says why a packet was dropped; OK (0) means it was not. The names
// returned by String are stable: they label metrics and logs.
type Reason uint8

const (
	OK         Reason = iota
	TooShort          // shorter than the fixed headers need, or no headroom to write them
	BadHeader         // VXLAN flags or reserved bits wrong
	WrongVNI          // VXLAN network identifier is not ours
	NotForUs          // inner destination MAC is neither ours nor broadcast
	LoopMAC           // inner source MAC is ours: our own frame came back
	BadIP             // not a sane IPv4/IPv6 packet (version, header or length fields)
	Oversize          // larger than the peer accepts
	TTLExpired        // TTL reached zero on decrement
	NumReasons        // number of reasons; sizes per-reason counter arrays
)

var reasonNames = [NumReasons]string{
	OK:         "ok",
	TooShort:   "too_short",
	BadHeader:  "bad_header",
	WrongVNI:   "wrong_vni",
	NotForUs:   "not_for_us",
	LoopMAC:    "loop_mac",
	BadIP:      "bad_ip",
	Oversize:   "oversize",
	TTLExpired: "ttl_expired",
}

// String returns the reason's snake_case name, or "unknown".
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}
