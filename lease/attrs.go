package lease

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// attrsJSON is flanneld's LeaseAttrs shape: field order, a PublicIPv6
// pointer without omitempty (so null), the rest omitempty. encoding/json
// both marshals it as flanneld does and matches keys case-insensitively.
type attrsJSON struct {
	PublicIP      *string
	PublicIPv6    *string
	BackendType   string          `json:",omitempty"`
	BackendData   json.RawMessage `json:",omitempty"`
	BackendV6Data json.RawMessage `json:",omitempty"`
}

// MarshalJSON writes flanneld's exact bytes, e.g.
//
//	{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}
//
// Backend data is compacted, as flanneld's encoder does.
func (a Attrs) MarshalJSON() ([]byte, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	pub := a.PublicIP.String()
	out := attrsJSON{
		PublicIP:      &pub,
		BackendType:   a.BackendType,
		BackendData:   a.BackendData,
		BackendV6Data: a.BackendV6Data,
	}
	if a.PublicIPv6.IsValid() {
		s := a.PublicIPv6.String()
		out.PublicIPv6 = &s
	}
	return json.Marshal(out)
}

// UnmarshalJSON parses a lease value. PublicIP is required and must be
// IPv4; PublicIPv6 is null, absent or IPv6; the backend data, when present,
// must be JSON objects (or null), except an extension lease's BackendData,
// which flanneld writes as a JSON string (the PreStartupCommand's output).
func (a *Attrs) UnmarshalJSON(b []byte) error {
	var in attrsJSON
	if err := json.Unmarshal(b, &in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("lease attrs: %s: JSON %s: must be %s", te.Field, te.Value, jsonKind(te.Type))
		}
		return fmt.Errorf("lease attrs: must be a JSON object: %w", err)
	}
	var out Attrs
	if in.PublicIP == nil {
		return errors.New("lease attrs: PublicIP: required")
	}
	ip, err := netip.ParseAddr(*in.PublicIP)
	if err != nil || !ip.Is4() {
		return fmt.Errorf("lease attrs: PublicIP %q: must be an IPv4 address", *in.PublicIP)
	}
	out.PublicIP = ip
	if in.PublicIPv6 != nil {
		ip6, err := netip.ParseAddr(*in.PublicIPv6)
		if err != nil || !ip6.Is6() || ip6.Is4In6() || ip6.Zone() != "" {
			return fmt.Errorf("lease attrs: PublicIPv6 %q: must be an IPv6 address or null", *in.PublicIPv6)
		}
		out.PublicIPv6 = ip6
	}
	out.BackendType = in.BackendType
	out.BackendData = in.BackendData
	out.BackendV6Data = in.BackendV6Data
	if err := out.validate(); err != nil {
		return err
	}
	*a = out
	return nil
}

// validate holds the rules shared by marshalling and parsing.
func (a Attrs) validate() error {
	if !a.PublicIP.Is4() {
		return fmt.Errorf("lease attrs: PublicIP %q: must be an IPv4 address", a.PublicIP)
	}
	if a.PublicIP.IsUnspecified() && !a.PublicIPv6.IsValid() {
		// flanneld writes 0.0.0.0 for an IPv6-only node, which has PublicIPv6.
		return fmt.Errorf("lease attrs: PublicIP %s: must not be unspecified unless PublicIPv6 is set (IPv6-only)", a.PublicIP)
	}
	if a.PublicIPv6.IsValid() && (!a.PublicIPv6.Is6() || a.PublicIPv6.Is4In6() || a.PublicIPv6.Zone() != "") {
		return fmt.Errorf("lease attrs: PublicIPv6 %q: must be an IPv6 address or null", a.PublicIPv6)
	}
	for _, d := range []struct {
		name string
		raw  json.RawMessage
	}{{"BackendData", a.BackendData}, {"BackendV6Data", a.BackendV6Data}} {
		if len(d.raw) == 0 || bytes.Equal(d.raw, []byte("null")) {
			continue
		}
		t := bytes.TrimLeft(d.raw, " \t\r\n")
		if a.BackendType == BackendExtension && d.name == "BackendData" && len(t) > 0 && t[0] == '"' {
			var s string
			if json.Unmarshal(d.raw, &s) != nil {
				return fmt.Errorf("lease attrs: %s %.40q: must be a JSON string or object", d.name, d.raw)
			}
			continue
		}
		if len(t) == 0 || t[0] != '{' || !json.Valid(d.raw) {
			return fmt.Errorf("lease attrs: %s %.40q: must be a JSON object", d.name, d.raw)
		}
	}
	return nil
}

// ParseAttrs parses a lease value (see UnmarshalJSON).
func ParseAttrs(b []byte) (Attrs, error) {
	var a Attrs
	err := a.UnmarshalJSON(b)
	return a, err
}

// VXLAN decodes the BackendData of a vxlan lease and checks its VtepMAC: six
// bytes, unicast, not all zero (a kernel peer would drop frames to any other).
func (a Attrs) VXLAN() (VXLANData, net.HardwareAddr, error) {
	var d VXLANData
	if a.BackendType != BackendVXLAN {
		return d, nil, fmt.Errorf("lease attrs: BackendType %q: must be %q", a.BackendType, BackendVXLAN)
	}
	if len(a.BackendData) == 0 {
		return d, nil, errors.New("lease attrs: BackendData: required for a vxlan lease")
	}
	if err := json.Unmarshal(a.BackendData, &d); err != nil {
		return d, nil, fmt.Errorf("lease attrs: BackendData %.60q: must be {\"VNI\":<1..%d>,\"VtepMAC\":\"aa:bb:cc:dd:ee:ff\"}: %w",
			a.BackendData, MaxVNI, err)
	}
	if d.VNI > MaxVNI {
		return d, nil, fmt.Errorf("lease attrs: BackendData.VNI %d: must be at most %d", d.VNI, MaxVNI)
	}
	mac, err := net.ParseMAC(d.VtepMAC)
	switch {
	case err != nil || len(mac) != 6:
		return d, nil, fmt.Errorf("lease attrs: BackendData.VtepMAC %q: must be a 6-byte MAC such as \"c6:d2:32:6f:8f:44\"", d.VtepMAC)
	case mac[0]&1 != 0:
		return d, nil, fmt.Errorf("lease attrs: BackendData.VtepMAC %q: must be unicast (multicast bit set)", d.VtepMAC)
	case bytes.Equal(mac, make(net.HardwareAddr, 6)):
		return d, nil, fmt.Errorf("lease attrs: BackendData.VtepMAC %q: must not be all zero", d.VtepMAC)
	}
	return d, mac, nil
}

// NewVXLANAttrs returns the value a vxlan node publishes, as flanneld's:
// BackendType "vxlan", BackendData {"VNI":vni,"VtepMAC":"<mac>"}.
func NewVXLANAttrs(public netip.Addr, vni uint32, mac net.HardwareAddr) Attrs {
	// Marshalling a struct of a uint32 and a string cannot fail.
	data, _ := json.Marshal(VXLANData{VNI: vni, VtepMAC: mac.String()})
	return Attrs{PublicIP: public, BackendType: BackendVXLAN, BackendData: data}
}

// NewUDPAttrs returns the value a udp node publishes: PublicIP only, no
// BackendType, as flanneld's udp backend.
func NewUDPAttrs(public netip.Addr) Attrs {
	return Attrs{PublicIP: public}
}

// NewHostGWAttrs returns the value a host-gw node publishes, as flanneld's:
// PublicIP and BackendType "host-gw", no backend data.
func NewHostGWAttrs(public netip.Addr) Attrs {
	return Attrs{PublicIP: public, BackendType: BackendHostGW}
}

// NewAllocAttrs returns the value an alloc node publishes: PublicIP only, no
// BackendType (flanneld's alloc backend sets none).
func NewAllocAttrs(public netip.Addr) Attrs {
	return Attrs{PublicIP: public}
}

// NewExtensionAttrs returns the value an extension node publishes, as
// flanneld's: BackendType "extension" and, when the PreStartupCommand ran,
// its output as a JSON string in BackendData (ran false: no BackendData).
func NewExtensionAttrs(public netip.Addr, output string, ran bool) Attrs {
	a := Attrs{PublicIP: public, BackendType: BackendExtension}
	if ran {
		// Marshalling a string cannot fail.
		a.BackendData, _ = json.Marshal(output)
	}
	return a
}

// ExtensionData is the string an extension lease carries in BackendData
// ("" when it has none), which flanneld passes to the Subnet commands' stdin.
func (a Attrs) ExtensionData() (string, error) {
	if len(a.BackendData) == 0 {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(a.BackendData, &s); err != nil {
		return "", fmt.Errorf("lease attrs: BackendData %.40q: an extension lease's must be a JSON string", a.BackendData)
	}
	return s, nil
}
