package agent

import (
	"net/netip"
	"os/exec"
	"testing"
)

// TestIfaceSelection: flanneld's order in a throwaway namespace with two veth
// links: --iface first, then --iface-regex (addresses, then names),
// then --iface-can-reach, else the default route's.
func TestIfaceSelection(t *testing.T) {
	inNewNetns(t, func() {
		for _, c := range [][]string{
			{"link", "set", "lo", "up"},
			{"link", "add", "under0", "type", "veth", "peer", "name", "under0p"}, {"link", "set", "under0p", "up"}, {"addr", "add", "192.0.2.10/24", "dev", "under0"}, {"link", "set", "under0", "up"},
			{"link", "add", "mgmt7", "type", "veth", "peer", "name", "mgmt7p"}, {"link", "set", "mgmt7p", "up"}, {"addr", "add", "198.51.100.7/24", "dev", "mgmt7"}, {"link", "set", "mgmt7", "up"},
			{"route", "add", "default", "via", "198.51.100.1", "dev", "mgmt7"},
		} {
			if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
				t.Errorf("ip %v: %v %s", c, err, out)
				return
			}
		}
		for _, tt := range []struct {
			name string
			c    ifaceChoice
			want string
			addr string
		}{
			{"default route", ifaceChoice{}, "mgmt7", "198.51.100.7"},
			{"public-ip's interface", ifaceChoice{public: netip.MustParseAddr("192.0.2.10")}, "under0", "192.0.2.10"},
			{"iface by name", ifaceChoice{names: []string{"nosuch", "under0"}}, "under0", "192.0.2.10"},
			{"regex on address", ifaceChoice{regexes: []string{`^192\.0\.2\.[0-9]{1,3}$`}}, "under0", "192.0.2.10"},
			{"regex on name", ifaceChoice{regexes: []string{"nomatch", "^mgmt[0-9]$"}}, "mgmt7", "198.51.100.7"},
			{"iface before regex", ifaceChoice{names: []string{"mgmt7"}, regexes: []string{"under.*"}}, "mgmt7", "198.51.100.7"},
			{"can-reach", ifaceChoice{canReach: "192.0.2.99"}, "under0", "192.0.2.10"},
			{"regex before can-reach", ifaceChoice{regexes: []string{"^mgmt7$"}, canReach: "192.0.2.99"}, "mgmt7", "198.51.100.7"},
			{"can-reach via default", ifaceChoice{names: []string{"nosuch"}, canReach: "203.0.113.5"}, "mgmt7", "198.51.100.7"},
		} {
			got, err := findExtIface(tt.c)
			if err != nil || got.Name != tt.want || got.Addr.String() != tt.addr {
				t.Errorf("%s: got %+v, %v; want %s %s", tt.name, got, err, tt.want, tt.addr)
			}
		}
		if _, err := findExtIface(ifaceChoice{names: []string{"nosuch"}, regexes: []string{"zzz"}}); err == nil {
			t.Errorf("nothing matches: no error")
		} else {
			t.Logf("nothing matches: %v", err)
		}
	})
}
