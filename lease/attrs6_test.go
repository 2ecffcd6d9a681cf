package lease

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestDualVXLANAttrsJSON(t *testing.T) {
	mac4, _ := net.ParseMAC("c6:d2:32:6f:8f:44")
	mac6, _ := net.ParseMAC("9e:11:0a:5b:c3:01")
	cases := []struct {
		name string
		a    Attrs
		want string
	}{
		{"dual-stack", NewDualVXLANAttrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"), 1, mac4, mac6),
			`{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"9e:11:0a:5b:c3:01"}}`},
		// flanneld's IPv6-only node: ip.IP4(0) marshals as "0.0.0.0", no BackendData.
		{"IPv6-only", NewDualVXLANAttrs(netip.Addr{}, netip.MustParseAddr("fd00::1"), 1, nil, mac6),
			`{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"9e:11:0a:5b:c3:01"}}`},
		{"udp", NewDualUDPAttrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")),
			`{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1"}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.a)
		if err != nil || string(b) != c.want {
			t.Errorf("%s: got %s %v\nwant %s", c.name, b, err, c.want)
			continue
		}
		back, err := ParseAttrs(b)
		if err != nil {
			t.Errorf("%s: parse back: %v", c.name, err)
		}
		if c.a.BackendType == BackendVXLAN {
			if _, m, err := back.VXLAN6(); err != nil || m.String() != mac6.String() {
				t.Errorf("%s: VXLAN6 = %v, %v", c.name, m, err)
			}
		}
	}
}

func TestVXLAN6Errors(t *testing.T) {
	base := Attrs{PublicIP: netip.MustParseAddr("10.0.0.1"), BackendType: BackendVXLAN}
	for _, c := range []struct{ data, want string }{
		{"", "BackendV6Data: required"},
		{`{"VNI":1,"VtepMAC":"01:00:00:00:00:01"}`, "BackendV6Data.VtepMAC"},
		{`{"VNI":1,"VtepMAC":"zz"}`, "BackendV6Data.VtepMAC"},
		{`{"VNI":16777216,"VtepMAC":"02:00:00:00:00:01"}`, "BackendV6Data.VNI"},
	} {
		a := base
		a.BackendV6Data = json.RawMessage(c.data)
		if _, _, err := a.VXLAN6(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("BackendV6Data %q: err %v, want one naming %q", c.data, err, c.want)
		}
	}
	// 0.0.0.0 is PublicIP only for an IPv6-only node.
	if _, err := ParseAttrs([]byte(`{"PublicIP":"0.0.0.0","PublicIPv6":null}`)); err == nil {
		t.Error("PublicIP 0.0.0.0 without PublicIPv6 accepted")
	}
}

// flanneld's WriteSubnetFile, byte for byte: v4 lines when EnableIPv4, then
// v6 lines when EnableIPv6, each subnet as its first address.
func TestSubnetEnvIPv6FlanneldFormat(t *testing.T) {
	p := netip.MustParsePrefix
	for _, c := range []struct {
		e    SubnetEnv
		want string
	}{
		{SubnetEnv{Network: p("10.244.0.0/16"), Subnet: p("10.244.3.0/24"), IPv6Network: p("fd00:10:244::/56"),
			IPv6Subnet: p("fd00:10:244:3::/64"), MTU: 1450, IPMasq: true},
			"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"},
		{SubnetEnv{IPv6Network: p("fd00:10:244::/56"), IPv6Subnet: p("fd00:10:244:3::/64"), MTU: 1430},
			"FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n"},
	} {
		b, err := MarshalSubnetEnv(c.e)
		if err != nil || string(b) != c.want {
			t.Errorf("got %q %v\nwant %q", b, err, c.want)
		}
		back, err := ParseSubnetEnv(b)
		if err != nil || back.IPv6Subnet != c.e.IPv6Subnet || back.IPv6Network != c.e.IPv6Network {
			t.Errorf("parse back: %+v %v", back, err)
		}
	}
}
