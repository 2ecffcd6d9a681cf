package lease

import (
	"net/netip"
	"testing"
)

// Invariants: no panic; what parses and can be written is written so that
// it reads back to the same value.
func FuzzReadSubnetEnv(f *testing.F) {
	for _, s := range []string{
		"FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
		"FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"# c\nexport FLANNEL_SUBNET='10.5.52.1/24'\nFLANNEL_MTU = 1450 # x\n",
		"FLANNEL_NETWORK=10.5.0.0/16,10.6.0.0/16\n",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseSubnetEnv(data)
		if err != nil {
			return
		}
		for _, p := range []netip.Prefix{e.Network, e.Subnet, e.IPv6Network, e.IPv6Subnet} {
			if p.IsValid() && p != p.Masked() {
				t.Fatalf("ParseSubnetEnv(%q) returned unmasked %s", data, p)
			}
		}
		out, err := MarshalSubnetEnv(e)
		if err != nil {
			return
		}
		back, err := ParseSubnetEnv(out)
		if err != nil {
			t.Fatalf("re-read of %q: %v", out, err)
		}
		// Lines for a family without its Network are not written.
		want := e
		if !want.Network.IsValid() {
			want.Subnet = netip.Prefix{}
		}
		if !want.IPv6Network.IsValid() {
			want.IPv6Subnet = netip.Prefix{}
		}
		if back != want {
			t.Fatalf("round trip of %q via %q: %+v, want %+v", data, out, back, want)
		}
	})
}
