package lease

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestWireGuardConfig: flanneld's wireguard keys and defaults (ListenPort
// 51820, ListenPortV6 51821, Mode separate, no keepalive, no PSK).
func TestWireGuardConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"WireGuard"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Backend
	if b.Type != BackendWireGuard || b.ListenPort != 51820 || b.ListenPortV6 != 51821 || b.Mode != "separate" ||
		b.PSK != "" || b.PersistentKeepaliveInterval != 0 || b.MTU != 0 || b.UDPPort() != 51820 {
		t.Fatalf("defaults: %+v", b)
	}
	psk := "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
	c, err = ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard","PSK":"` + psk +
		`","ListenPort":51000,"ListenPortV6":51001,"PersistentKeepaliveInterval":25,"Mode":"Auto","MTU":9000}}`))
	if err != nil {
		t.Fatal(err)
	}
	b = c.Backend
	if b.PSK != psk || b.ListenPort != 51000 || b.ListenPortV6 != 51001 || b.PersistentKeepaliveInterval != 25 ||
		b.Mode != "auto" || b.MTU != 9000 || b.UDPPort() != 51000 {
		t.Fatalf("explicit keys: %+v", b)
	}
	// A config built in code marshals the wireguard keys and parses back.
	in := &Config{Network: c.Network, EnableIPv4: true, Backend: Backend{Type: BackendWireGuard, ListenPort: 51000,
		ListenPortV6: 51821, Mode: "ipv4", PersistentKeepaliveInterval: 5}}
	js, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseConfig(js)
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	if o := out.Backend; o.ListenPort != 51000 || o.Mode != "ipv4" || o.PersistentKeepaliveInterval != 5 {
		t.Fatalf("round trip of %s: %+v", js, o)
	}
}

func TestWireGuardConfigErrors(t *testing.T) {
	for _, tt := range []struct{ name, backend, field, msg string }{
		{"PSK not base64", `"PSK":"not a key"`, "Backend.PSK", `config: Backend.PSK "(hidden)": must be a base64 WireGuard key of 32 bytes (wg genpsk): not standard base64`},
		{"PSK short", `"PSK":"Zm9vYmFy"`, "Backend.PSK", "not 32 bytes"},
		{"ListenPort zero", `"ListenPort":0`, "Backend.ListenPort", "config: Backend.ListenPort 0: must be in 1..65535 (absent: 51820)"},
		{"ListenPort too big", `"ListenPort":65536`, "Backend.ListenPort", "must be in 1..65535"},
		{"ListenPortV6 negative", `"ListenPortV6":-1`, "Backend.ListenPortV6", "(absent: 51821)"},
		{"ListenPort string", `"ListenPort":"51820"`, "Backend.ListenPort", "must be an integer"},
		{"keepalive negative", `"PersistentKeepaliveInterval":-1`, "Backend.PersistentKeepaliveInterval", "must be 0 (off) or seconds in 1..65535"},
		{"keepalive too big", `"PersistentKeepaliveInterval":65536`, "Backend.PersistentKeepaliveInterval", "65536"},
		{"mode ipv6", `"Mode":"ipv6"`, "Backend.Mode", `config: Backend.Mode "ipv6": felt's wireguard backend reaches peers over IPv4 only`},
		{"mode unknown", `"Mode":"both"`, "Backend.Mode", `must be "separate", "auto", "ipv4" or "ipv6"`},
		{"MTU too small", `"MTU":147`, "Backend.MTU", "config: Backend.MTU 147: must be 0 (interface MTU) or in 148..65535"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard",` + tt.backend + `}}`
			_, err := ParseConfig([]byte(in))
			var fe *FieldError
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("ParseConfig(%s) = %v, want a %s error containing %q", in, err, tt.field, tt.msg)
			}
			if strings.Contains(err.Error(), "Zm9v") {
				t.Fatalf("the error shows the PSK: %v", err)
			}
		})
	}
}

// TestWireGuardAttrs: felt's lease value is flanneld's byte for byte, and
// malformed BackendData is refused with the field named.
func TestWireGuardAttrs(t *testing.T) {
	const pub = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
	k, err := ParseWireGuardKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	a := NewWireGuardAttrs(netip.MustParseAddr("192.168.64.3"), k, 51820)
	got, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// flanneld's newSubnetAttrs with IPv4 only, as etcd holds it.
	want := `{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"` + pub + `","Port":51820}}`
	if string(got) != want {
		t.Fatalf("wireguard attrs\n got %s\nwant %s", got, want)
	}
	back, err := ParseAttrs(got)
	if err != nil {
		t.Fatal(err)
	}
	d, k2, err := back.WireGuard()
	if err != nil || k2 != k || d.Port != 51820 || d.PublicKey != pub {
		t.Fatalf("WireGuard() = %+v %x %v", d, k2, err)
	}
	for _, tt := range []struct{ value, msg string }{
		{`{"PublicIP":"1.2.3.4","BackendType":"vxlan","BackendData":{"VNI":1}}`, `BackendType "vxlan": must be "wireguard"`},
		{`{"PublicIP":"1.2.3.4","BackendType":"wireguard"}`, "BackendData: required for a wireguard lease"},
		{`{"PublicIP":"1.2.3.4","BackendType":"wireguard","BackendData":{"PublicKey":"abc","Port":51820}}`, `BackendData.PublicKey "abc": must be a base64 WireGuard key of 32 bytes`},
		{`{"PublicIP":"1.2.3.4","BackendType":"wireguard","BackendData":{"PublicKey":"` + pub + `","Port":70000}}`, `must be {"PublicKey":"<base64 key>","Port":<0..65535>}`},
		{`{"PublicIP":"1.2.3.4","BackendType":"wireguard","BackendData":{"PublicKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","Port":1}}`, "must not be all zero"},
	} {
		a, err := ParseAttrs([]byte(tt.value))
		if err != nil {
			t.Fatalf("ParseAttrs(%s): %v", tt.value, err)
		}
		if _, _, err := a.WireGuard(); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("WireGuard() of %s: %v, want %q", tt.value, err, tt.msg)
		}
	}
}
