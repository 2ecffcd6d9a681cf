package lease

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
)

// NewDualVXLANAttrs is the value flanneld's vxlan backend publishes for a
// dual-stack (or IPv6-only) node: flannel.<VNI>'s MAC in BackendData,
// flannel-v6.<VNI>'s in BackendV6Data and the v6 underlay address in
// PublicIPv6. mac4 nil leaves BackendData out (an IPv6-only node, whose
// PublicIP is 0.0.0.0 as flanneld writes it).
//
//	{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"},"BackendV6Data":{"VNI":1,"VtepMAC":"…"}}
func NewDualVXLANAttrs(public, public6 netip.Addr, vni uint32, mac4, mac6 net.HardwareAddr) Attrs {
	a := Attrs{PublicIP: public, PublicIPv6: public6, BackendType: BackendVXLAN}
	if !public.IsValid() {
		a.PublicIP = netip.IPv4Unspecified()
	}
	if mac4 != nil {
		a.BackendData, _ = json.Marshal(VXLANData{VNI: vni, VtepMAC: mac4.String()})
	}
	a.BackendV6Data, _ = json.Marshal(VXLANData{VNI: vni, VtepMAC: mac6.String()})
	return a
}

// NewDualUDPAttrs is a udp node's value with its IPv6 underlay address (felt
// only: flanneld's udp backend is IPv4-only and publishes PublicIPv6 null).
func NewDualUDPAttrs(public, public6 netip.Addr) Attrs {
	a := Attrs{PublicIP: public, PublicIPv6: public6}
	if !public.IsValid() {
		a.PublicIP = netip.IPv4Unspecified()
	}
	return a
}

// VXLAN6 decodes BackendV6Data, the flannel-v6.<VNI> device's VNI and MAC,
// under the same rules as VXLAN applies to BackendData.
func (a Attrs) VXLAN6() (VXLANData, net.HardwareAddr, error) {
	if len(a.BackendV6Data) == 0 || string(a.BackendV6Data) == "null" {
		return VXLANData{}, nil, errors.New("lease attrs: BackendV6Data: required for a dual-stack vxlan lease")
	}
	b := a
	b.BackendData = a.BackendV6Data
	d, mac, err := b.VXLAN()
	if err != nil {
		return d, nil, errors.New(strings.ReplaceAll(err.Error(), "BackendData", "BackendV6Data"))
	}
	return d, mac, nil
}
