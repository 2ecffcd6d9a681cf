package lease

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarshalSubnetEnvExactBytes(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		e    SubnetEnv
		want string
	}{
		{"vxlan", SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.52.0/24"), MTU: 1450},
			"FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"},
		{"udp with masq", SubnetEnv{Network: p("10.1.0.0/16"), Subnet: p("10.1.17.0/24"), MTU: 1472, IPMasq: true},
			"FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n"},
		{"dual stack, contract's example", SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.52.0/24"),
			IPv6Network: p("2001:cafe:42::/56"), IPv6Subnet: p("2001:cafe:42::/64"), MTU: 1450},
			"FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"},
		{"unmasked subnet is written from its first address", SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.52.9/24"), MTU: 1450},
			"FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"},
		// flanneld's WriteSubnetFile: v4 lines when EnableIPv4, then v6
		// lines when EnableIPv6, each subnet as its first address.
		{"dual stack with masq", SubnetEnv{Network: p("10.244.0.0/16"), Subnet: p("10.244.3.0/24"), IPv6Network: p("fd00:10:244::/56"),
			IPv6Subnet: p("fd00:10:244:3::/64"), MTU: 1450, IPMasq: true},
			"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"},
		// An IPv6-only node (EnableIPv4 false): no FLANNEL_NETWORK nor FLANNEL_SUBNET line.
		{"IPv6-only", SubnetEnv{IPv6Network: p("fd00:10:244::/56"), IPv6Subnet: p("fd00:10:244:3::/64"), MTU: 1430},
			"FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n"},
		{"IPv6-only with masq", SubnetEnv{IPv6Network: p("fd00:5::/48"), IPv6Subnet: p("fd00:5:0:34::/64"), MTU: 1430, IPMasq: true},
			"FLANNEL_IPV6_NETWORK=fd00:5::/48\nFLANNEL_IPV6_SUBNET=fd00:5:0:34::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalSubnetEnv(tt.e)
			if err != nil || string(got) != tt.want {
				t.Fatalf("MarshalSubnetEnv = %q, %v\nwant %q", got, err, tt.want)
			}
			back, err := ParseSubnetEnv(got)
			want := tt.e
			want.Subnet = want.Subnet.Masked()
			if err != nil || back != want {
				t.Errorf("ParseSubnetEnv(%q) = %+v, %v; want %+v", got, back, err, want)
			}
		})
	}
}

func TestMarshalSubnetEnvErrors(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		e   SubnetEnv
		msg string
	}{
		{SubnetEnv{MTU: 1450}, "Network and IPv6Network both unset"},
		{SubnetEnv{Network: p("10.5.0.0/16"), MTU: 1450}, `Subnet "invalid Prefix": must be an IPv4 prefix`},
		{SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.1.0/31"), MTU: 1450}, "Subnet 10.5.1.0/31: must be /30 or shorter"},
		{SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.1.0/24"), MTU: 0}, "MTU 0: must be in 68..65535"},
		{SubnetEnv{Network: p("fd00::/16"), Subnet: p("10.5.1.0/24"), MTU: 1450}, "Network fd00::/16: must be an IPv4 prefix"},
		{SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.1.0/24"), IPv6Network: p("fd00::/48"), MTU: 1450}, "IPv6Subnet"},
	}
	for _, tt := range tests {
		if _, err := MarshalSubnetEnv(tt.e); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("MarshalSubnetEnv(%+v) error %v, want one containing %q", tt.e, err, tt.msg)
		}
	}
}

func TestParseSubnetEnvTolerant(t *testing.T) {
	in := `# written by hand
export FLANNEL_NETWORK="10.5.0.0/16"

FLANNEL_SUBNET='10.5.52.1/24'
  FLANNEL_MTU = 1450   # overlay MTU
FLANNEL_IPMASQ=true
FLANNEL_IPV6_NETWORK=fd00::/48
FLANNEL_IPV6_SUBNET=fd00:0:0:7::1/64
SOMETHING_ELSE=whatever
`
	got, err := ParseSubnetEnv([]byte(in))
	p := netip.MustParsePrefix
	want := SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.52.0/24"), MTU: 1450, IPMasq: true,
		IPv6Network: p("fd00::/48"), IPv6Subnet: p("fd00:0:0:7::/64")}
	if err != nil || got != want {
		t.Errorf("ParseSubnetEnv = %+v, %v\nwant %+v", got, err, want)
	}
	// The CNI plugin's comma list: the first entry is the Network.
	got, err = ParseSubnetEnv([]byte("FLANNEL_NETWORK=10.5.0.0/16,10.6.0.0/16\n"))
	if err != nil || got.Network != p("10.5.0.0/16") {
		t.Errorf("comma list: %+v, %v", got, err)
	}
	for _, tt := range []struct{ in, msg string }{
		{"FLANNEL_SUBNET=10.5.52.1\n", `subnet.env line 1: FLANNEL_SUBNET "10.5.52.1": must be an IPv4 CIDR prefix`},
		{"\nFLANNEL_MTU=big\n", `subnet.env line 2: FLANNEL_MTU "big": must be an integer`},
		{"FLANNEL_IPMASQ=maybe", "must be true or false"},
		{"FLANNEL_IPV6_SUBNET=10.0.0.0/8", "must be an IPv6 CIDR prefix"},
		{"just words", `subnet.env line 1: "just words": must be KEY=value`},
		{`FLANNEL_MTU="1450`, "FLANNEL_MTU: unterminated quote"},
	} {
		if _, err := ParseSubnetEnv([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseSubnetEnv(%q) error %v, want one containing %q", tt.in, err, tt.msg)
		}
	}
}

func TestWriteSubnetEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "flannel") // created by WriteSubnetEnv
	path := filepath.Join(dir, "subnet.env")
	p := netip.MustParsePrefix
	first := SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.52.0/24"), MTU: 1450}
	if err := WriteSubnetEnv(path, first); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("dir mode %v, %v; want 0755", st.Mode(), err)
	}
	// Replace the file; it keeps mode 0644 and nothing else is left behind.
	second := SubnetEnv{Network: p("10.5.0.0/16"), Subnet: p("10.5.60.0/24"), MTU: 1400, IPMasq: true}
	if err := WriteSubnetEnv(path, second); err != nil {
		t.Fatal(err)
	}
	st, err = os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v, %v; want 0644", st.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if want := "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.60.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n"; string(data) != want {
		t.Errorf("file = %q, want %q", data, want)
	}
	got, err := ReadSubnetEnv(path)
	if err != nil || got != second {
		t.Errorf("ReadSubnetEnv = %+v, %v; want %+v", got, err, second)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only subnet.env: %v", len(entries), entries)
	}
	// A failed write (invalid value) leaves the old file in place.
	if err := WriteSubnetEnv(path, SubnetEnv{MTU: 1}); err == nil {
		t.Fatal("WriteSubnetEnv accepted an empty SubnetEnv")
	}
	if again, _ := os.ReadFile(path); string(again) != string(data) {
		t.Errorf("failed write changed the file to %q", again)
	}
	if _, err := ReadSubnetEnv(filepath.Join(dir, "absent.env")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadSubnetEnv of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestWriteSubnetEnvAtomic races a reader against repeated writes: every
// read must see one whole version, never a partial or empty file.
func TestWriteSubnetEnvAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subnet.env")
	p := netip.MustParsePrefix
	versions := []SubnetEnv{
		{Network: p("10.5.0.0/16"), Subnet: p("10.5.52.0/24"), MTU: 1450},
		{Network: p("10.5.0.0/16"), Subnet: p("10.5.53.0/24"), IPv6Network: p("fd00::/48"), IPv6Subnet: p("fd00:0:0:1::/64"), MTU: 1400, IPMasq: true},
	}
	valid := map[string]bool{}
	for _, v := range versions {
		b, err := MarshalSubnetEnv(v)
		if err != nil {
			t.Fatal(err)
		}
		valid[string(b)] = true
	}
	if err := WriteSubnetEnv(path, versions[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		for i := range 200 {
			if err := WriteSubnetEnv(path, versions[i%2]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if reads == 0 {
				t.Fatal("reader never ran")
			}
			return
		default:
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if !valid[string(b)] {
			t.Fatalf("read %d saw a partial file: %q", reads, b)
		}
		reads++
	}
}
