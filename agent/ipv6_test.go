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

// A peer's lease gives one router peer per family the cluster runs, over the
// underlay its backend uses; the same lease again is no change, and a
// Removed event (which carries the key's subnets only) takes its peers away.
// In an IPv6-only cluster a lease is known by its IPv6 subnet alone.
func TestPeerSetIPv6(t *testing.T) {
	mac4, _ := net.ParseMAC("02:00:00:00:04:02")
	mac6, _ := net.ParseMAC("02:00:00:00:06:02")
	own := lease.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:1::/64")}
	peer := lease.Lease{Subnet: netip.MustParsePrefix("10.5.2.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:2::/64")}
	own6, peer6 := lease.Lease{IPv6Subnet: own.IPv6Subnet}, lease.Lease{IPv6Subnet: peer.IPv6Subnet}
	pub, pub6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("fd00:192::2")
	for _, tc := range []struct {
		name, config string
		own, peer    lease.Lease
		attrs        lease.Attrs
		want         []router.Peer
	}{
		{"vxlan", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"vxlan"}}`, own, peer,
			lease.NewDualVXLANAttrs(pub, pub6, 1, mac4, mac6),
			[]router.Peer{{Subnet: peer.Subnet, Addr: netip.AddrPortFrom(pub, 8472), MAC: [6]byte(mac4)},
				{Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub6, 8472), MAC: [6]byte(mac6)}}},
		{"vxlan without BackendV6Data", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"vxlan"}}`, own, peer,
			func() lease.Attrs {
				a := lease.NewDualVXLANAttrs(pub, pub6, 1, mac4, mac6)
				a.BackendV6Data = nil
				return a
			}(),
			[]router.Peer{{Subnet: peer.Subnet, Addr: netip.AddrPortFrom(pub, 8472), MAC: [6]byte(mac4)}}},
		{"udp: IPv6 over the IPv4 underlay", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"udp"}}`, own, peer,
			lease.NewDualUDPAttrs(pub, pub6),
			[]router.Peer{{Subnet: peer.Subnet, Addr: netip.AddrPortFrom(pub, 8285)}, {Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub, 8285)}}},
		{"host-gw: IPv6 via PublicIPv6", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"host-gw"}}`, own, peer,
			func() lease.Attrs { a := lease.NewHostGWAttrs(pub); a.PublicIPv6 = pub6; return a }(),
			[]router.Peer{{Subnet: peer.Subnet, Addr: netip.AddrPortFrom(pub, 0)}, {Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub6, 0)}}},
		{"host-gw without PublicIPv6: IPv4 only", `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"host-gw"}}`, own, peer,
			lease.NewHostGWAttrs(pub),
			[]router.Peer{{Subnet: peer.Subnet, Addr: netip.AddrPortFrom(pub, 0)}}},
		{"IPv6 off: the IPv6 side is ignored", `{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`, own, peer,
			lease.NewDualUDPAttrs(pub, pub6),
			[]router.Peer{{Subnet: peer.Subnet, Addr: netip.AddrPortFrom(pub, 8285)}}},
		{"IPv6-only vxlan", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"vxlan"}}`, own6, peer6,
			lease.NewDualVXLANAttrs(netip.Addr{}, pub6, 1, nil, mac6),
			[]router.Peer{{Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub6, 8472), MAC: [6]byte(mac6)}}},
		{"IPv6-only udp", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:5::/48","Backend":{"Type":"udp"}}`, own6, peer6,
			lease.NewDualUDPAttrs(netip.Addr{}, pub6),
			[]router.Peer{{Subnet: peer.IPv6Subnet, Addr: netip.AddrPortFrom(pub6, 8285)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.peer
			l.Attrs = tc.attrs
			checkPeerSet(t, tc.config, tc.own, l, tc.want)
		})
	}
}

// checkPeerSet applies peer to a peer set of config and own, checks that
// it yields want, that the same lease again changes nothing, and that a
// key-only removal (as the watcher sends) empties the set.
func checkPeerSet(t *testing.T, config string, own, peer lease.Lease, want []router.Peer) {
	t.Helper()
	cfg, err := lease.ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	s := newPeerSet(cfg, own, zap.NewNop())
	if !s.apply([]lease.Event{{Type: lease.Added, Lease: peer}}) {
		t.Fatal("apply reported no change")
	}
	got := s.list()
	if len(got) != len(want) {
		t.Fatalf("peers %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("peer %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if s.apply([]lease.Event{{Type: lease.Added, Lease: peer}}) {
		t.Error("the same lease again reported a change")
	}
	if !s.apply([]lease.Event{{Type: lease.Removed, Lease: lease.Lease{Subnet: peer.Subnet, IPv6Subnet: peer.IPv6Subnet}}}) {
		t.Error("removal reported no change")
	}
	if n := len(s.list()); n != 0 {
		t.Errorf("%d peers left after removal", n)
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
