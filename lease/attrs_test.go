package lease

import (
	"bufio"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestContractLeases parses the contract's sample keys and values and
// checks that they re-marshal byte for byte.
func TestContractLeases(t *testing.T) {
	f, err := os.Open("testdata/leases.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		sn, sn6, err := ParseSubnetKey(key)
		if err != nil {
			t.Errorf("ParseSubnetKey(%q): %v", key, err)
			continue
		}
		if got := SubnetKey(DefaultPrefix, sn, sn6); got != key {
			t.Errorf("SubnetKey round trip: %q, want %q", got, key)
		}
		a, err := ParseAttrs([]byte(val))
		if err != nil {
			t.Errorf("ParseAttrs(%s): %v", val, err)
			continue
		}
		out, err := json.Marshal(a)
		if err != nil || string(out) != val {
			t.Errorf("Marshal(ParseAttrs(%s))\n = %s, %v\nwant byte-identical", val, out, err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("read %d sample leases, want 4", n)
	}
}

func TestNewAttrsBytes(t *testing.T) {
	mac := net.HardwareAddr{0xc6, 0xd2, 0x32, 0x6f, 0x8f, 0x44}
	mac6 := net.HardwareAddr{0x9e, 0x11, 0x0a, 0x5b, 0xc3, 0x01}
	tests := []struct {
		name string
		a    Attrs
		want string
	}{
		{"vxlan", NewVXLANAttrs(netip.MustParseAddr("192.168.64.3"), 1, mac),
			`{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`},
		{"udp", NewUDPAttrs(netip.MustParseAddr("10.0.0.1")), `{"PublicIP":"10.0.0.1","PublicIPv6":null}`},
		{"host-gw", NewHostGWAttrs(netip.MustParseAddr("10.0.0.1")), `{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"host-gw"}`},
		{"alloc", NewAllocAttrs(netip.MustParseAddr("10.0.0.1")), `{"PublicIP":"10.0.0.1","PublicIPv6":null}`},
		{"extension without pre-startup", NewExtensionAttrs(netip.MustParseAddr("10.0.0.1"), "", false),
			`{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"extension"}`},
		{"extension, output as a JSON string", NewExtensionAttrs(netip.MustParseAddr("10.0.0.1"), "key=<abc>", true),
			`{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"extension","BackendData":"key=\u003cabc\u003e"}`},
		{"public IPv6", Attrs{PublicIP: netip.MustParseAddr("10.0.0.1"), PublicIPv6: netip.MustParseAddr("2001:db8::1")},
			`{"PublicIP":"10.0.0.1","PublicIPv6":"2001:db8::1"}`},
		{"backend data compacted as flanneld's encoder does", Attrs{PublicIP: netip.MustParseAddr("10.0.0.1"), BackendType: "vxlan",
			BackendData: json.RawMessage("{ \"VNI\": 2,\n \"VtepMAC\": \"0e:00:00:00:00:01\" }")},
			`{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":2,"VtepMAC":"0e:00:00:00:00:01"}}`},
		{"dual-stack vxlan", NewDualVXLANAttrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1"), 1, mac, mac6),
			`{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"9e:11:0a:5b:c3:01"}}`},
		// flanneld's IPv6-only node: ip.IP4(0) marshals as "0.0.0.0", no BackendData.
		{"IPv6-only vxlan", NewDualVXLANAttrs(netip.Addr{}, netip.MustParseAddr("fd00::1"), 1, nil, mac6),
			`{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"9e:11:0a:5b:c3:01"}}`},
		{"dual-stack udp", NewDualUDPAttrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")),
			`{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := json.Marshal(tt.a)
			if err != nil || string(out) != tt.want {
				t.Errorf("Marshal = %s, %v\nwant      %s", out, err, tt.want)
			}
			// The same value marshals identically inside a struct field
			// (value receiver), as the etcd adapter may embed it.
			wrapped, err := json.Marshal(struct{ A Attrs }{tt.a})
			if err != nil || string(wrapped) != `{"A":`+tt.want+`}` {
				t.Errorf("Marshal in a struct = %s, %v", wrapped, err)
			}
			back, err := ParseAttrs(out)
			if err != nil {
				t.Errorf("parse back: %v", err)
			}
			if tt.a.BackendV6Data != nil {
				if _, m, err := back.VXLAN6(); err != nil || m.String() != mac6.String() {
					t.Errorf("VXLAN6 of the parsed value = %v, %v; want %v", m, err, mac6)
				}
			}
		})
	}
}

func TestParseAttrsErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{`{"PublicIPv6":null}`, "lease attrs: PublicIP: required"},
		{`{"PublicIP":"fd00::1"}`, `lease attrs: PublicIP "fd00::1": must be an IPv4 address`},
		{`{"PublicIP":"::ffff:10.0.0.1"}`, "must be an IPv4 address"},
		{`{"PublicIP":"nope"}`, `PublicIP "nope": must be an IPv4 address`},
		{`{"PublicIP":"0.0.0.0"}`, "must not be unspecified"},
		{`{"PublicIP":17}`, "lease attrs: PublicIP: JSON number: must be a string"},
		{`{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}`, `PublicIPv6 "10.0.0.2": must be an IPv6 address or null`},
		{`{"PublicIP":"10.0.0.1","PublicIPv6":""}`, `PublicIPv6 "": must be an IPv6 address or null`},
		{`{"PublicIP":"10.0.0.1","BackendType":5}`, "BackendType: JSON number: must be a string"},
		{`{"PublicIP":"10.0.0.1","BackendData":"x"}`, "BackendData \"\\\"x\\\"\": must be a JSON object"},
		{`{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":"x"}`, "must be a JSON object"},
		{`{"PublicIP":"10.0.0.1","BackendType":"extension","BackendData":[1]}`, "BackendData \"[1]\": must be a JSON object"},
		{`{"PublicIP":"10.0.0.1","BackendV6Data":[1]}`, "BackendV6Data"},
		{`"10.0.0.1"`, "lease attrs: must be a JSON object"},
		{`{"PublicIP":"10.0.0.1"`, "lease attrs: must be a JSON object"},
		{``, "lease attrs: must be a JSON object"},
	}
	for _, tt := range tests {
		a, err := ParseAttrs([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseAttrs(%s) = %+v, %v; want an error containing %q", tt.in, a, err, tt.msg)
		}
	}
	if _, err := json.Marshal(Attrs{}); err == nil || !strings.Contains(err.Error(), "PublicIP") {
		t.Errorf("Marshal of zero Attrs: %v, want an error naming PublicIP", err)
	}
}

func TestParseAttrsTolerant(t *testing.T) {
	// flanneld decodes with encoding/json too: keys match case-insensitively,
	// unknown keys are ignored, and null backend data is kept as written.
	a, err := ParseAttrs([]byte(`{"publicip":"10.0.0.1","backendtype":"vxlan","Extra":1,"BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.PublicIP != netip.MustParseAddr("10.0.0.1") || a.BackendType != "vxlan" || a.PublicIPv6.IsValid() {
		t.Errorf("got %+v", a)
	}
	a, err = ParseAttrs([]byte(`{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendData":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(a); string(out) != `{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendData":null}` {
		t.Errorf("null BackendData re-marshalled as %s", out)
	}
}

func TestAttrsVXLAN(t *testing.T) {
	pub := netip.MustParseAddr("192.168.64.3")
	mac := net.HardwareAddr{0xc6, 0xd2, 0x32, 0x6f, 0x8f, 0x44}
	d, got, err := NewVXLANAttrs(pub, 4096, mac).VXLAN()
	if err != nil || d.VNI != 4096 || d.VtepMAC != "c6:d2:32:6f:8f:44" || got.String() != mac.String() {
		t.Fatalf("VXLAN() = %+v, %s, %v", d, got, err)
	}
	bad := []struct {
		a   Attrs
		msg string
	}{
		{NewUDPAttrs(pub), `BackendType "": must be "vxlan"`},
		{Attrs{PublicIP: pub, BackendType: "vxlan"}, "BackendData: required"},
		{Attrs{PublicIP: pub, BackendType: "vxlan", BackendData: json.RawMessage(`{"VNI":-1,"VtepMAC":"0e:00:00:00:00:01"}`)}, "BackendData"},
		{Attrs{PublicIP: pub, BackendType: "vxlan", BackendData: json.RawMessage(`{"VNI":16777216,"VtepMAC":"0e:00:00:00:00:01"}`)}, "VNI 16777216: must be at most 16777215"},
		{NewVXLANAttrs(pub, 1, net.HardwareAddr{0x0f, 0, 0, 0, 0, 1}), `VtepMAC "0f:00:00:00:00:01": must be unicast`},
		{NewVXLANAttrs(pub, 1, net.HardwareAddr{0, 0, 0, 0, 0, 0}), "must not be all zero"},
		{NewVXLANAttrs(pub, 1, net.HardwareAddr{2, 0, 0, 0, 0, 0, 0, 1}), "must be a 6-byte MAC"},
		{Attrs{PublicIP: pub, BackendType: "vxlan", BackendData: json.RawMessage(`{"VNI":1,"VtepMAC":"zz"}`)}, `VtepMAC "zz": must be a 6-byte MAC`},
	}
	for _, tt := range bad {
		_, _, err := tt.a.VXLAN()
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("VXLAN() of %s %s: %v; want an error containing %q", tt.a.BackendType, tt.a.BackendData, err, tt.msg)
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

func TestAttrsExtensionData(t *testing.T) {
	a, err := ParseAttrs([]byte(`{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"extension","BackendData":"line1\nline2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := a.ExtensionData(); err != nil || d != "line1\nline2" {
		t.Errorf("ExtensionData = %q, %v", d, err)
	}
	if d, err := (Attrs{}).ExtensionData(); err != nil || d != "" {
		t.Errorf("ExtensionData of no data = %q, %v", d, err)
	}
	if _, err := (Attrs{BackendData: json.RawMessage(`{"a":1}`)}).ExtensionData(); err == nil || !strings.Contains(err.Error(), "must be a JSON string") {
		t.Errorf("ExtensionData of an object: %v", err)
	}
}
