package agent

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/feltnet/felt/lease"
)

func testNetConfig(t *testing.T, backend string) *lease.Config {
	t.Helper()
	c, err := lease.ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"` + backend + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func vxlanLease(t *testing.T, sn, pub, mac string) lease.Lease {
	t.Helper()
	m, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	return lease.Lease{Subnet: netip.MustParsePrefix(sn), Attrs: lease.NewVXLANAttrs(netip.MustParseAddr(pub), 1, m)}
}

func TestPeerSetVXLANIgnoresOtherBackendsOncePerLease(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := newPeerSet(testNetConfig(t, "vxlan"), lease.Lease{}, zap.New(core))
	hostgw := lease.Lease{Subnet: netip.MustParsePrefix("10.5.9.0/24"),
		Attrs: lease.Attrs{PublicIP: netip.MustParseAddr("192.168.1.9"), BackendType: "host-gw"}}
	udp := lease.Lease{Subnet: netip.MustParsePrefix("10.5.8.0/24"), Attrs: lease.NewUDPAttrs(netip.MustParseAddr("192.168.1.8"))}
	good := vxlanLease(t, "10.5.7.0/24", "192.168.1.7", "c6:d2:32:6f:8f:44")

	if !s.apply([]lease.Event{{Type: lease.Added, Lease: hostgw}, {Type: lease.Added, Lease: udp}, {Type: lease.Added, Lease: good}}) {
		t.Fatal("adding a vxlan lease must change the peer set")
	}
	// The same leases again (a re-list after compaction): no new warnings.
	if s.apply([]lease.Event{{Type: lease.Added, Lease: hostgw}, {Type: lease.Added, Lease: udp}, {Type: lease.Added, Lease: good}}) {
		t.Fatal("identical events must not change the peer set")
	}
	if n := logs.FilterMessage("ignoring lease").Len(); n != 2 {
		t.Fatalf("got %d 'ignoring lease' warnings, want 2 (one per foreign lease)", n)
	}
	peers := s.list()
	if len(peers) != 1 || peers[0].Subnet != good.Subnet || peers[0].Addr != netip.MustParseAddrPort("192.168.1.7:8472") ||
		net.HardwareAddr(peers[0].MAC[:]).String() != "c6:d2:32:6f:8f:44" {
		t.Fatalf("peers = %+v", peers)
	}
	if !s.apply([]lease.Event{{Type: lease.Removed, Lease: good}}) || len(s.list()) != 0 {
		t.Fatal("removal must drop the peer")
	}
}

func TestPeerSetUDPTakesAnyLease(t *testing.T) {
	s := newPeerSet(testNetConfig(t, "udp"), lease.Lease{}, zap.NewNop())
	s.apply([]lease.Event{
		{Type: lease.Added, Lease: vxlanLease(t, "10.5.7.0/24", "192.168.1.7", "c6:d2:32:6f:8f:44")},
		{Type: lease.Added, Lease: lease.Lease{Subnet: netip.MustParsePrefix("10.5.8.0/24"), Attrs: lease.NewUDPAttrs(netip.MustParseAddr("192.168.1.8"))}},
	})
	peers := s.list()
	if len(peers) != 2 || peers[1].Addr != netip.MustParseAddrPort("192.168.1.8:8285") {
		t.Fatalf("flanneld's udp backend ignores BackendType; peers = %+v", peers)
	}
}

func TestPeerSetBadVtepMACIgnored(t *testing.T) {
	s := newPeerSet(testNetConfig(t, "vxlan"), lease.Lease{}, zap.NewNop())
	l := lease.Lease{Subnet: netip.MustParsePrefix("10.5.7.0/24"), Attrs: lease.Attrs{PublicIP: netip.MustParseAddr("192.168.1.7"),
		BackendType: "vxlan", BackendData: []byte(`{"VNI":1,"VtepMAC":"not-a-mac"}`)}}
	if s.apply([]lease.Event{{Type: lease.Added, Lease: l}}) || len(s.list()) != 0 {
		t.Fatal("a lease with a malformed VtepMAC must be skipped")
	}
}

func TestPeerSetRejectsLeasesOutsideThePool(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	own := lease.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24")}
	s := newPeerSet(testNetConfig(t, "udp"), own, zap.New(core))
	at := func(sn string) lease.Lease {
		return lease.Lease{Subnet: netip.MustParsePrefix(sn), Attrs: lease.NewUDPAttrs(netip.MustParseAddr("192.168.1.3"))}
	}
	good, wide, inB, ours := at("10.5.2.0/24"), at("0.0.0.0/1"), at("10.5.2.0/25"), at("10.5.1.0/24")
	evs := []lease.Event{{Type: lease.Added, Lease: good}, {Type: lease.Added, Lease: wide},
		{Type: lease.Added, Lease: inB}, {Type: lease.Added, Lease: ours}}
	s.apply(evs)
	s.apply(evs) // a re-list: no new warnings, no new counts
	if peers := s.list(); len(peers) != 1 || peers[0].Subnet != good.Subnet {
		t.Fatalf("peers = %+v, want only %s", peers, good.Subnet)
	}
	if n := logs.FilterMessage("ignoring lease").Len(); n != 3 {
		t.Fatalf("%d 'ignoring lease' warnings, want 3", n)
	}
	rules, counts := s.counts.snapshot()
	if got := fmt.Sprint(rules, counts); got != "[outside_network own_subnet subnet_len] [1 1 1]" {
		t.Fatalf("rejected counts %s", got)
	}
	rej := s.rejectedList()
	if len(rej) != 3 || rej[0].Subnet != "0.0.0.0/1" || rej[0].Rule != lease.RuleOutsideNetwork ||
		!strings.Contains(rej[0].Reason, "must lie inside Network 10.5.0.0/16") {
		t.Fatalf("rejected list %+v", rej)
	}
	// A peer whose lease turns bad (its value rewritten) leaves the table.
	bad := good
	bad.Attrs.PublicIP = netip.Addr{}
	if !s.apply([]lease.Event{{Type: lease.Added, Lease: bad}}) || len(s.list()) != 0 {
		t.Fatal("a peer whose lease is rejected must be removed")
	}
	// After a re-acquire the old own subnet is a peer's like any other.
	s.setOwn(lease.Lease{Subnet: netip.MustParsePrefix("10.5.7.0/24")})
	if !s.apply([]lease.Event{{Type: lease.Added, Lease: ours}}) {
		t.Fatal("the old own subnet must be accepted after setOwn")
	}
}
