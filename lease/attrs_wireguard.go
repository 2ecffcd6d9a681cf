package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// WireGuardData is the BackendData of a wireguard lease, flanneld's
// wireguardLeaseAttrs field for field: {"PublicKey":"<base64>","Port":51820}.
type WireGuardData struct {
	PublicKey string `json:"PublicKey"`
	Port      uint16 `json:"Port"` // 0 from old flanneld versions: the receiver's own ListenPort
}

// NewWireGuardAttrs returns the value a wireguard node publishes on IPv4,
// as flanneld's: BackendType "wireguard", BackendData {"PublicKey":…,"Port":…}.
func NewWireGuardAttrs(public netip.Addr, publicKey [32]byte, port uint16) Attrs {
	// Marshalling a struct of a string and a uint16 cannot fail.
	data, _ := json.Marshal(WireGuardData{PublicKey: encodeKey(publicKey), Port: port})
	return Attrs{PublicIP: public, BackendType: BackendWireGuard, BackendData: data}
}

// WireGuard decodes the BackendData of a wireguard lease and its public key.
func (a Attrs) WireGuard() (WireGuardData, [32]byte, error) {
	var d WireGuardData
	if a.BackendType != BackendWireGuard {
		return d, [32]byte{}, fmt.Errorf("lease attrs: BackendType %q: must be %q", a.BackendType, BackendWireGuard)
	}
	if len(a.BackendData) == 0 {
		return d, [32]byte{}, errors.New("lease attrs: BackendData: required for a wireguard lease")
	}
	if err := json.Unmarshal(a.BackendData, &d); err != nil {
		return d, [32]byte{}, fmt.Errorf("lease attrs: BackendData %.60q: must be {\"PublicKey\":\"<base64 key>\",\"Port\":<0..65535>}: %w",
			a.BackendData, err)
	}
	k, err := ParseWireGuardKey(d.PublicKey)
	if err != nil {
		return d, k, fmt.Errorf("lease attrs: BackendData.PublicKey %q: must be a base64 WireGuard key of 32 bytes: %v", d.PublicKey, err)
	}
	if k == ([32]byte{}) {
		return d, k, fmt.Errorf("lease attrs: BackendData.PublicKey %q: must not be all zero", d.PublicKey)
	}
	return d, k, nil
}
