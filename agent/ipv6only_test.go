package agent

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

// In an IPv6-only cluster a lease is known by its IPv6 subnet: it is added,
// re-added without change and removed by that key, and its peer is reached
// over the IPv6 underlay on both backends.
func TestPeerSetIPv6Only(t *testing.T) {
	mac6, _ := net.ParseMAC("02:00:00:00:06:02")
	own := lease.Lease{IPv6Subnet: netip.MustParsePrefix("fd00:5:0:1::/64")}
	peer := lease.Lease{IPv6Subnet: netip.MustParsePrefix("fd00:5:0:2::/64")}
	pub6 := netip.MustParseAddr("fd00:192::2")
	for _, tc := range []struct {
		backend string
		attrs   lease.Attrs
		want    router.Peer
	}{
		{"vxlan", lease.NewDualVXLANAttrs(netip.Addr{}, pub6, 1, nil, mac6),
			router.Peer{Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub6, 8472), MAC: [6]byte(mac6)}},
		{"udp", lease.NewDualUDPAttrs(netip.Addr{}, pub6),
			router.Peer{Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub6, 8285)}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			cfg, err := lease.ParseConfig([]byte(`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"` + tc.backend + `"}}`))
			if err != nil {
				t.Fatal(err)
			}
			s := newPeerSet(cfg, own, zap.NewNop())
			l := peer
			l.Attrs = tc.attrs
			if !s.apply([]lease.Event{{Type: lease.Added, Lease: l}}) {
				t.Fatal("apply reported no change")
			}
			if got := s.list(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("peers %+v, want [%+v]", got, tc.want)
			}
			if s.apply([]lease.Event{{Type: lease.Added, Lease: l}}) {
				t.Error("the same lease again reported a change")
			}
			// A Removed event carries the key's subnets only.
			if !s.apply([]lease.Event{{Type: lease.Removed, Lease: lease.Lease{IPv6Subnet: peer.IPv6Subnet}}}) {
				t.Error("removal reported no change")
			}
			if n := len(s.list()); n != 0 {
				t.Errorf("%d peers left after removal", n)
			}
		})
	}
}

type fixedConfig struct{ c *lease.Config }

func (f fixedConfig) GetConfig(context.Context) (*lease.Config, error) { return f.c, nil }

// An IPv6-only config runs with udp and vxlan; the backends without an
// IPv6 data plane refuse it at start, naming EnableIPv4 and the backend
// (they would otherwise drop IPv6 and be left with no family).
func TestLoadNetConfigIPv6Only(t *testing.T) {
	for _, tc := range []struct {
		backend string
		ok      bool
	}{{"vxlan", true}, {"udp", true}, {"host-gw", false}, {"alloc", false}} {
		cfg, err := lease.ParseConfig([]byte(`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"` + tc.backend + `"}}`))
		if err != nil {
			t.Fatal(err)
		}
		got, err := loadNetConfig(context.Background(), fixedConfig{cfg}, lease.DefaultPrefix, zap.NewNop())
		if tc.ok && (err != nil || got.EnableIPv4 || !got.EnableIPv6) {
			t.Errorf("%s: %+v, %v", tc.backend, got, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "EnableIPv4 false") || !strings.Contains(err.Error(), tc.backend)) {
			t.Errorf("%s: %v, want a refusal naming EnableIPv4 and the backend", tc.backend, err)
		}
	}
}
