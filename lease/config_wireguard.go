package lease

import "encoding/base64"

// WireGuardOverhead is what flanneld's wireguard backend takes off the
// underlay MTU for its device: a 40-byte IPv6 header (it reserves for the
// larger family), 8 UDP, 4 type, 4 key index, 8 nonce and a 16-byte tag.
const WireGuardOverhead = 80

// validateWireGuard checks the wireguard keys as flanneld reads them, and
// refuses what felt cannot do (IPv6 endpoints).
func (b Backend) validateWireGuard() error {
	if b.PSK != "" {
		if _, err := ParseWireGuardKey(b.PSK); err != nil {
			return fieldErr("Backend.PSK", "(hidden)", "must be a base64 WireGuard key of 32 bytes (wg genpsk): %v", err)
		}
	}
	for _, p := range []struct {
		name string
		port int
		def  int
	}{{"Backend.ListenPort", b.ListenPort, DefaultWireGuardPort}, {"Backend.ListenPortV6", b.ListenPortV6, DefaultWireGuardPortV6}} {
		if p.port < 1 || p.port > 65535 {
			return fieldErr(p.name, p.port, "must be in 1..65535 (absent: %d)", p.def)
		}
	}
	if k := b.PersistentKeepaliveInterval; k < 0 || k > 65535 {
		return fieldErr("Backend.PersistentKeepaliveInterval", k, "must be 0 (off) or seconds in 1..65535")
	}
	switch b.Mode {
	case WireGuardModeSeparate, "auto", "ipv4":
		// With IPv4 only, the three modes are one: a device on IPv4 endpoints.
	case "ipv6":
		return fieldErr("Backend.Mode", b.Mode, "felt's wireguard backend reaches peers over IPv4 only; use %q, \"auto\" or \"ipv4\"", WireGuardModeSeparate)
	default:
		return fieldErr("Backend.Mode", b.Mode, "must be %q, \"auto\", \"ipv4\" or \"ipv6\"", WireGuardModeSeparate)
	}
	if b.MTU != 0 && (b.MTU < 68+WireGuardOverhead || b.MTU > 65535) {
		return fieldErr("Backend.MTU", b.MTU, "must be 0 (interface MTU) or in %d..65535", 68+WireGuardOverhead)
	}
	return nil
}

// ParseWireGuardKey decodes a WireGuard key as wg(8) and flanneld write it:
// 32 bytes in standard base64 (44 characters with one '=').
func ParseWireGuardKey(s string) ([32]byte, error) {
	var k [32]byte
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return k, errNotBase64
	}
	if len(b) != len(k) {
		return k, errKeyLen
	}
	copy(k[:], b)
	return k, nil
}

type keyError string

func (e keyError) Error() string { return string(e) }

const (
	errNotBase64 = keyError("not standard base64")
	errKeyLen    = keyError("not 32 bytes")
)

// encodeKey is ParseWireGuardKey's inverse.
func encodeKey(k [32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }
