package lease

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseConfigDefaults(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	// v4 is what ParseConfig makes of an IPv4 network with no backend (udp).
	v4 := func(network string, subnetLen int, min, max string) Config {
		return Config{Network: p(network), SubnetLen: subnetLen, SubnetMin: a(min), SubnetMax: a(max),
			EnableIPv4: true, Backend: Backend{Type: "udp"}}
	}
	// net105 is v4 for 10.5.0.0/16, which the cases below the first few
	// start from; with states what a case changes in it.
	net105 := v4("10.5.0.0/16", 24, "10.5.1.0", "10.5.255.0")
	with := func(c Config, change func(*Config)) Config { change(&c); return c }
	tests := []struct {
		name string
		in   string
		want Config
	}{
		{"flanneld's example, lower-case key, absent backend is udp", `{"network":"10.3.0.0/16"}`, v4("10.3.0.0/16", 24, "10.3.1.0", "10.3.255.0")},
		{"/22 still gets /24", `{"Network":"10.4.0.0/22"}`, v4("10.4.0.0/22", 24, "10.4.1.0", "10.4.3.0")},
		{"/23 gets prefix+2", `{"Network":"10.4.0.0/23"}`, v4("10.4.0.0/23", 25, "10.4.0.128", "10.4.1.128")},
		{"/28 is the smallest", `{"Network":"10.4.0.0/28"}`, v4("10.4.0.0/28", 30, "10.4.0.4", "10.4.0.12")},
		{"host bits are masked as net.ParseCIDR does", `{"Network":"10.5.7.9/16"}`, net105},
		{"explicit SubnetLen, Min, Max", `{"Network":"10.5.0.0/16","SubnetLen":20,"SubnetMin":"10.5.32.0","SubnetMax":"10.5.64.0"}`,
			v4("10.5.0.0/16", 20, "10.5.32.0", "10.5.64.0")},
		{"/0 network", `{"Network":"0.0.0.0/0"}`, v4("0.0.0.0/0", 24, "0.0.1.0", "255.255.255.0")},
		{"vxlan defaults, type lower-cased", `{"Network":"10.5.0.0/16","Backend":{"Type":"VXLAN"}}`, with(net105, func(c *Config) {
			c.Backend = Backend{Type: "vxlan", VNI: 1, Raw: json.RawMessage(`{"Type":"VXLAN"}`)}
		})},
		{"vxlan options", `{"Network":"10.5.0.0/16","Backend":{"type":"vxlan","vni":4096,"port":4789,"MTU":9001,"GBP":true,"Learning":true,"DirectRouting":true}}`, with(net105, func(c *Config) {
			c.Backend = Backend{Type: "vxlan", VNI: 4096, Port: 4789, MTU: 9001, GBP: true, Learning: true, DirectRouting: true,
				Raw: json.RawMessage(`{"type":"vxlan","vni":4096,"port":4789,"MTU":9001,"GBP":true,"Learning":true,"DirectRouting":true}`)}
		})},
		{"host-gw, type lower-cased", `{"Network":"10.5.0.0/16","Backend":{"Type":"Host-GW"}}`, with(net105, func(c *Config) {
			c.Backend = Backend{Type: "host-gw", Raw: json.RawMessage(`{"Type":"Host-GW"}`)}
		})},
		{"alloc", `{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}`, with(net105, func(c *Config) {
			c.Backend = Backend{Type: "alloc", Raw: json.RawMessage(`{"Type":"alloc"}`)}
		})},
		{"extension commands", `{"Network":"10.5.0.0/16","Backend":{"Type":"extension","PreStartupCommand":"/bin/pre a","postStartupCommand":"/bin/post","SubnetAddCommand":"/bin/add $SUBNET","SubnetRemoveCommand":"/bin/rm"}}`, with(net105, func(c *Config) {
			c.Backend = Backend{Type: "extension", Extension: ExtensionCommands{PreStartupCommand: "/bin/pre a",
				PostStartupCommand: "/bin/post", SubnetAddCommand: "/bin/add $SUBNET", SubnetRemoveCommand: "/bin/rm"},
				Raw: json.RawMessage(`{"Type":"extension","PreStartupCommand":"/bin/pre a","postStartupCommand":"/bin/post","SubnetAddCommand":"/bin/add $SUBNET","SubnetRemoveCommand":"/bin/rm"}`)}
		})},
		{"null backend is absent", `{"Network":"10.5.0.0/16","Backend":null}`, net105},
		{"dual stack, flanneld's IPv6 example", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}`, with(net105, func(c *Config) {
			c.EnableIPv6, c.IPv6Network, c.IPv6SubnetLen = true, p("fc00::/48"), 64
			c.IPv6SubnetMin, c.IPv6SubnetMax = a("fc00:0:0:1::"), a("fc00:0:0:ffff::")
			c.Backend = Backend{Type: "vxlan", VNI: 1, Raw: json.RawMessage(`{"Type":"vxlan"}`)}
		})},
		{"IPv6 /64 network gets prefix+2", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/64"}`, with(net105, func(c *Config) {
			c.EnableIPv6, c.IPv6Network, c.IPv6SubnetLen = true, p("fd00::/64"), 66
			c.IPv6SubnetMin, c.IPv6SubnetMax = a("fd00::4000:0:0:0"), a("fd00::c000:0:0:0")
		})},
		{"IPv6 fields ignored unless enabled", `{"Network":"10.5.0.0/16","IPv6Network":"fd00::/48"}`, with(net105, func(c *Config) {
			c.IPv6Network = p("fd00::/48")
		})},
		{"nftables flag kept", `{"Network":"10.5.0.0/16","EnableNFTables":true}`, with(net105, func(c *Config) {
			c.EnableNFTables = true
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseConfig(%s): %v", tt.in, err)
			}
			if !got.Equal(&tt.want) {
				t.Errorf("ParseConfig(%s)\n got %+v\nwant %+v", tt.in, *got, tt.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, in string
		field    string // FieldError.Field, "" when the error is not a FieldError
		msg      string // substring of the message
	}{
		{"not JSON", `{"Network":`, "", "config: invalid JSON"},
		{"not an object", `[1]`, "", "must be a JSON object"},
		{"Network missing", `{}`, "Network", `config: Network "": required`},
		{"Network not a CIDR", `{"Network":"10.5.0.0"}`, "Network", `config: Network "10.5.0.0": must be a CIDR prefix`},
		{"Network IPv6", `{"Network":"fd00::/16"}`, "Network", `config: Network "fd00::/16": must be an IPv4 prefix`},
		{"Network wrong type", `{"Network":42}`, "Network", "config: Network: JSON number: must be a string"},
		{"SubnetLen wrong type", `{"Network":"10.5.0.0/16","SubnetLen":"24"}`, "SubnetLen", "config: SubnetLen: JSON string: must be an integer"},
		{"SubnetLen fractional", `{"Network":"10.5.0.0/16","SubnetLen":24.5}`, "SubnetLen", "must be an integer"},
		{"SubnetLen above 30", `{"Network":"10.5.0.0/16","SubnetLen":31}`, "SubnetLen", "config: SubnetLen 31: must be at most 30"},
		{"SubnetLen too short for four subnets", `{"Network":"10.5.0.0/16","SubnetLen":17}`, "SubnetLen", "config: SubnetLen 17: must be at least 18"},
		{"SubnetLen negative", `{"Network":"10.5.0.0/16","SubnetLen":-1}`, "SubnetLen", "must not be negative"},
		{"network too small", `{"Network":"10.5.0.0/29"}`, "Network", `config: Network "10.5.0.0/29": too small: the prefix must be /28 or shorter`},
		{"SubnetMin outside", `{"Network":"10.5.0.0/16","SubnetMin":"10.6.0.0"}`, "SubnetMin", `config: SubnetMin "10.6.0.0": must be inside Network 10.5.0.0/16`},
		{"SubnetMax outside", `{"Network":"10.5.0.0/16","SubnetMax":"10.4.0.0"}`, "SubnetMax", `config: SubnetMax "10.4.0.0": must be inside Network`},
		{"SubnetMin unaligned", `{"Network":"10.5.0.0/16","SubnetMin":"10.5.1.1"}`, "SubnetMin", `config: SubnetMin "10.5.1.1": must be on a /24 boundary (10.5.1.0)`},
		{"SubnetMax unaligned", `{"Network":"10.5.0.0/16","SubnetMax":"10.5.9.128"}`, "SubnetMax", "must be on a /24 boundary"},
		{"SubnetMin not an address", `{"Network":"10.5.0.0/16","SubnetMin":"ten"}`, "SubnetMin", `config: SubnetMin "ten": must be an IPv4 address`},
		{"SubnetMax IPv6", `{"Network":"10.5.0.0/16","SubnetMax":"fd00::"}`, "SubnetMax", `config: SubnetMax "fd00::": must be an IPv4 address`},
		{"SubnetMin above SubnetMax", `{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.8.0"}`, "SubnetMin", `config: SubnetMin "10.5.9.0": must not be above SubnetMax 10.5.8.0`},
		{"both families disabled", `{"EnableIPv4":false,"Network":"10.5.0.0/16"}`, "EnableIPv4", "config: EnableIPv4 false: at least one of EnableIPv4 and EnableIPv6 must be true"},
		{"EnableIPv6 wrong type", `{"Network":"10.5.0.0/16","EnableIPv6":"yes"}`, "EnableIPv6", "must be true or false"},
		{"IPv6Network missing", `{"Network":"10.5.0.0/16","EnableIPv6":true}`, "IPv6Network", `config: IPv6Network "": required`},
		{"IPv6Network is IPv4", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"10.6.0.0/16"}`, "IPv6Network", "must be an IPv6 prefix"},
		{"IPv6Network too small", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/125"}`, "IPv6Network", "must be /124 or shorter"},
		{"IPv6SubnetLen above 126", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":127}`, "IPv6SubnetLen", "config: IPv6SubnetLen 127: must be at most 126"},
		{"IPv6SubnetLen too short", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":49}`, "IPv6SubnetLen", "must be at least 50"},
		{"IPv6SubnetMin unaligned", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd00:0:0:1::1"}`, "IPv6SubnetMin", "must be on a /64 boundary (fd00:0:0:1::)"},
		{"IPv6SubnetMin IPv4", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMin":"10.5.1.0"}`, "IPv6SubnetMin", `config: IPv6SubnetMin "10.5.1.0": must be an IPv6 address`},
		{"IPv6SubnetMax not an address", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMax":"x"}`, "IPv6SubnetMax", `config: IPv6SubnetMax "x": must be an IPv6 address`},
		{"IPv6SubnetMax outside", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMax":"fd01::"}`, "IPv6SubnetMax", "must be inside IPv6Network fd00::/48"},
		{"IPv6SubnetMin above max", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd00:0:0:9::","IPv6SubnetMax":"fd00:0:0:8::"}`, "IPv6SubnetMin", "must not be above IPv6SubnetMax"},
		{"unknown backend", `{"Network":"10.5.0.0/16","Backend":{"Type":"ipip"}}`, "Backend.Type", `config: Backend.Type "ipip": felt speaks only "udp", "vxlan", "wireguard", "host-gw", "alloc" and "extension"`},
		{"blank extension command", `{"Network":"10.5.0.0/16","Backend":{"Type":"extension","SubnetAddCommand":"  "}}`, "Backend.SubnetAddCommand",
			`config: Backend.SubnetAddCommand "  ": must name a program (or be absent)`},
		{"empty backend type", `{"Network":"10.5.0.0/16","Backend":{}}`, "Backend.Type", `config: Backend.Type "": felt speaks only`},
		{"backend not an object", `{"Network":"10.5.0.0/16","Backend":"vxlan"}`, "Backend", "config: Backend: JSON string: must be a JSON object"},
		{"backend type wrong type", `{"Network":"10.5.0.0/16","Backend":{"Type":1}}`, "Backend.Type", "config: Backend.Type: JSON number: must be a string"},
		{"VNI zero", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":0}}`, "Backend.VNI", "config: Backend.VNI 0: must be in 1..16777215"},
		{"VNI too big", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}}`, "Backend.VNI", "config: Backend.VNI 16777216: must be in 1..16777215"},
		{"port too big", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","Port":65536}}`, "Backend.Port", "config: Backend.Port 65536: must be in 1..65535 (0 or absent: 8472)"},
		{"port negative udp", `{"Network":"10.5.0.0/16","Backend":{"Type":"udp","Port":-1}}`, "Backend.Port", "(0 or absent: 8285)"},
		{"port wrong type", `{"Network":"10.5.0.0/16","Backend":{"Type":"udp","Port":"8285"}}`, "Backend.Port", "config: Backend.Port: JSON string: must be an integer"},
		{"MTU too small", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":100}}`, "Backend.MTU", "config: Backend.MTU 100: must be 0 (interface MTU) or in 118..65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseConfig(%s) = %+v, want an error", tt.in, *c)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseConfig(%s) error %q, want it to contain %q", tt.in, err, tt.msg)
			}
			var fe *FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Errorf("ParseConfig(%s) error %#v, want a *FieldError for %s", tt.in, err, tt.field)
			}
		})
	}
}

func TestValidateHandBuilt(t *testing.T) {
	good := func() *Config {
		c, err := ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("parsed config does not validate: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		msg    string
	}{
		{"unmasked network", func(c *Config) { c.Network = netip.MustParsePrefix("10.5.1.0/16") }, `Network "10.5.1.0/16": host bits must be zero (10.5.0.0/16)`},
		{"SubnetLen unset", func(c *Config) { c.SubnetLen = 0 }, "SubnetLen 0: must be set"},
		{"SubnetMin unset", func(c *Config) { c.SubnetMin = netip.Addr{} }, `SubnetMin "": must be set`},
		{"SubnetMax IPv6", func(c *Config) { c.SubnetMax = netip.MustParseAddr("fd00::") }, "must be an IPv4 address"},
		{"backend type upper case", func(c *Config) { c.Backend.Type = "VXLAN" }, `Backend.Type "VXLAN"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mutate(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.msg)
			}
		})
	}
}

func TestBackendUDPPort(t *testing.T) {
	tests := []struct {
		b    Backend
		want int
	}{
		{Backend{Type: "vxlan"}, 8472},
		{Backend{Type: "udp"}, 8285},
		{Backend{Type: "vxlan", Port: 4789}, 4789},
		{Backend{Type: "udp", Port: 9000}, 9000},
	}
	for _, tt := range tests {
		if got := tt.b.UDPPort(); got != tt.want {
			t.Errorf("%+v.UDPPort() = %d, want %d", tt.b, got, tt.want)
		}
	}
}

func TestConfigContains(t *testing.T) {
	c, err := ParseConfig([]byte(`{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0","EnableIPv6":true,"IPv6Network":"fd00::/48"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		sn   string
		want bool
	}{
		{"10.5.10.0/24", true}, {"10.5.20.0/24", true}, {"10.5.15.0/24", true},
		{"10.5.9.0/24", false}, {"10.5.21.0/24", false}, {"10.5.10.0/25", false},
		{"10.5.10.1/24", false}, {"10.6.10.0/24", false}, {"fd00::/64", false},
	} {
		if got := c.Contains(p(tt.sn)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.sn, got, tt.want)
		}
	}
	if !c.ContainsIPv6(p("fd00:0:0:1::/64")) || c.ContainsIPv6(p("fd00::/64")) || c.ContainsIPv6(p("10.5.10.0/24")) {
		t.Error("ContainsIPv6: wrong answer for fd00:0:0:1::/64 (in), fd00::/64 (first subnet, out) or an IPv4 prefix")
	}
}

func TestConfigMarshalRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"Network":"10.5.0.0/16"}`,
		`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":7,"MacPrefix":"0E-2A"}}`,
		`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"udp","Port":9000}}`,
	} {
		c, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !c.Equal(c2) {
			t.Errorf("round trip of %s via %s:\n got %+v\nwant %+v", in, out, *c2, *c)
		}
		if strings.Contains(in, "MacPrefix") && !strings.Contains(string(out), `"MacPrefix":"0E-2A"`) {
			t.Errorf("marshalled %s lost the backend key felt does not model", out)
		}
	}
	// A hand-built backend without Raw is written from its fields.
	c := &Config{Network: netip.MustParsePrefix("10.1.0.0/16"), SubnetLen: 24,
		SubnetMin: netip.MustParseAddr("10.1.1.0"), SubnetMax: netip.MustParseAddr("10.1.255.0"),
		EnableIPv4: true, Backend: Backend{Type: "vxlan", VNI: 3}}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Network":"10.1.0.0/16","SubnetLen":24,"SubnetMin":"10.1.1.0","SubnetMax":"10.1.255.0","EnableIPv4":true,"Backend":{"Type":"vxlan","VNI":3}}`
	if string(out) != want {
		t.Errorf("Marshal = %s\nwant      %s", out, want)
	}
	c.Backend = Backend{Type: "extension", Extension: ExtensionCommands{SubnetAddCommand: "/bin/add"}}
	out, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"Backend":{"Type":"extension","SubnetAddCommand":"/bin/add"}}`; !strings.HasSuffix(string(out), want) {
		t.Errorf("Marshal = %s\nwant a suffix %s", out, want)
	}
}
