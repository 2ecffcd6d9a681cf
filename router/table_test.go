package router

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func peerAt(subnet string, ip byte) Peer {
	return Peer{Subnet: pfx(subnet), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, ip}), 8472)}
}

func TestTableLookup(t *testing.T) {
	tab := NewTable(pfx("10.5.0.0/16"), 24, []Peer{
		peerAt("10.5.1.0/24", 1),
		peerAt("10.5.2.0/24", 2),
		peerAt("10.5.2.16/28", 3),  // more specific than a pool subnet
		peerAt("10.5.128.0/17", 4), // less specific: only where no /24 matches
		peerAt("192.168.7.0/24", 5),
		peerAt("fd00:1::/64", 6),
		peerAt("10.5.9.77/24", 7), // not masked: NewTable masks it
	})
	for _, tc := range []struct {
		dst  string
		want byte // last byte of the peer's public IP; 0: no route
	}{
		{"10.5.1.1", 1}, {"10.5.1.255", 1}, {"10.5.2.1", 2}, {"10.5.2.17", 3}, {"10.5.2.32", 2},
		{"10.5.200.1", 4}, {"10.5.3.1", 0}, {"10.6.1.1", 0}, {"192.168.7.9", 5}, {"192.168.8.9", 0},
		{"fd00:1::5", 6}, {"fd00:2::5", 0}, {"10.5.9.1", 7}, {"::ffff:10.5.1.1", 0},
	} {
		p := tab.Lookup(netip.MustParseAddr(tc.dst))
		var got byte
		if p != nil {
			got = p.Addr.Addr().As4()[3]
		}
		if got != tc.want {
			t.Errorf("Lookup(%s) = peer %d, want %d", tc.dst, got, tc.want)
		}
	}
}

func TestTableLaterPeerWins(t *testing.T) {
	tab := NewTable(pfx("10.5.0.0/16"), 24, []Peer{
		peerAt("10.5.1.0/24", 1), peerAt("10.5.1.0/24", 2),
		peerAt("172.16.0.0/24", 3), peerAt("172.16.0.0/24", 4),
	})
	if p := tab.Lookup(netip.MustParseAddr("10.5.1.1")); p == nil || p.Addr.Addr().As4()[3] != 2 {
		t.Errorf("pool subnet: got %v, want the later peer .2", p)
	}
	if p := tab.Lookup(netip.MustParseAddr("172.16.0.1")); p == nil || p.Addr.Addr().As4()[3] != 4 {
		t.Errorf("fallback subnet: got %v, want the later peer .4", p)
	}
}

func TestTableBySender(t *testing.T) {
	tab := NewTable(pfx("10.5.0.0/16"), 24, []Peer{peerAt("10.5.1.0/24", 1), peerAt("10.5.2.0/24", 2)})
	for _, tc := range []struct {
		addr string
		want string // subnet, "" for none
	}{
		{"192.0.2.1", "10.5.1.0/24"}, {"192.0.2.2", "10.5.2.0/24"}, {"::ffff:192.0.2.2", "10.5.2.0/24"},
		{"192.0.2.3", ""}, {"10.5.1.1", ""},
	} {
		p := tab.BySender(netip.MustParseAddr(tc.addr))
		got := ""
		if p != nil {
			got = p.Subnet.String()
		}
		if got != tc.want {
			t.Errorf("BySender(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestTableSkipsInvalidPeers(t *testing.T) {
	tab := NewTable(pfx("10.5.0.0/16"), 24, []Peer{
		{Subnet: netip.Prefix{}, Addr: netip.MustParseAddrPort("192.0.2.1:8472")},
		{Subnet: pfx("10.5.2.0/24"), Addr: netip.MustParseAddrPort("192.0.2.2:0")},
		{Subnet: pfx("10.5.3.0/24"), Addr: netip.MustParseAddrPort("0.0.0.0:8472")},
		peerAt("10.5.4.0/24", 4),
	})
	if tab.Len() != 1 || len(tab.Skipped()) != 3 {
		t.Fatalf("Len %d, skipped %v: want 1 kept, 3 skipped", tab.Len(), tab.Skipped())
	}
	for i, field := range []string{"Subnet", "Addr", "Addr"} {
		if msg := tab.Skipped()[i].Error(); !strings.Contains(msg, field) {
			t.Errorf("skip %d: %q does not name %s", i, msg, field)
		}
	}
}

// TestTableMatchesNaiveLPM compares the indexed table with a linear
// longest-prefix match over random peers, for a dense and a sparse pool.
func TestTableMatchesNaiveLPM(t *testing.T) {
	for _, tc := range []struct {
		network string
		len     int
	}{{"10.0.0.0/8", 24}, {"10.0.0.0/8", 28}, {"0.0.0.0/0", 32}, {"10.5.0.0/16", 16}} {
		rng := rand.New(rand.NewPCG(1, uint64(tc.len)))
		network := pfx(tc.network)
		var peers []Peer
		for i := range 300 {
			bits := tc.len
			switch i % 5 {
			case 3:
				bits = max(network.Bits(), tc.len-3-rng.IntN(4)) // shorter
			case 4:
				bits = min(32, tc.len+1+rng.IntN(4)) // longer
			}
			a := randAddr(rng, network)
			if i%17 == 0 {
				a = netip.AddrFrom4([4]byte{172, 16, byte(rng.IntN(4)), byte(rng.IntN(256))}) // outside the pool
			}
			peers = append(peers, Peer{Subnet: netip.PrefixFrom(a, bits).Masked(), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 8472)})
		}
		tab := NewTable(network, tc.len, peers)
		for range 5000 {
			var dst netip.Addr
			if rng.IntN(2) == 0 {
				p := peers[rng.IntN(len(peers))].Subnet
				dst = randAddr(rng, p)
			} else {
				dst = randAddr(rng, network)
			}
			want := naiveLPM(peers, dst)
			got := tab.Lookup(dst)
			if (got == nil) != (want == nil) || (got != nil && *got != *want) {
				t.Fatalf("%s/%d: Lookup(%s) = %v, want %v", tc.network, tc.len, dst, got, want)
			}
		}
	}
}

// randAddr returns a random IPv4 address inside p.
func randAddr(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if p.Bits() < 32 {
		v |= rng.Uint32() & (1<<(32-p.Bits()) - 1)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// naiveLPM is the specification: longest prefix, later peer on ties.
func naiveLPM(peers []Peer, dst netip.Addr) *Peer {
	var best *Peer
	for i := range peers {
		p := &peers[i]
		if p.Subnet.Contains(dst) && (best == nil || p.Subnet.Bits() >= best.Subnet.Bits()) {
			best = p
		}
	}
	return best
}

func TestTableLookupAllocatesNothing(t *testing.T) {
	tab := NewTable(pfx("10.0.0.0/8"), 24, []Peer{peerAt("10.0.1.0/24", 1), peerAt("172.16.0.0/24", 2), peerAt("fd00::/64", 3)})
	sparse := NewTable(pfx("10.0.0.0/8"), 28, []Peer{peerAt("10.0.1.0/28", 1)})
	dsts := []netip.Addr{netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("fd00::1"), netip.MustParseAddr("8.8.8.8")}
	sender := netip.MustParseAddr("192.0.2.1")
	var hits int
	allocs := testing.AllocsPerRun(1000, func() {
		for _, d := range dsts {
			if tab.Lookup(d) != nil {
				hits++
			}
			if sparse.Lookup(d) != nil {
				hits++
			}
		}
		if tab.BySender(sender) != nil {
			hits++
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup/BySender: %v allocations per run, want 0", allocs)
	}
	if hits == 0 {
		t.Error("no lookup hit: the test measured nothing")
	}
}

// TestSenderSharedPublicIP: two leases with one public IP (a host's stale
// lease beside its new one): packets from either subnet are accepted.
func TestSenderSharedPublicIP(t *testing.T) {
	ip := netip.MustParseAddrPort("192.168.1.7:8472")
	tb := NewTable(netip.MustParsePrefix("10.5.0.0/16"), 24, []Peer{
		{Subnet: netip.MustParsePrefix("10.5.1.0/24"), Addr: ip},
		{Subnet: netip.MustParsePrefix("10.5.2.0/24"), Addr: ip},
		{Subnet: netip.MustParsePrefix("10.5.3.0/24"), Addr: netip.MustParseAddrPort("192.168.1.8:8472")},
	})
	for _, src := range []string{"10.5.1.9", "10.5.2.9"} {
		if p := tb.Sender(ip.Addr(), netip.MustParseAddr(src)); p == nil || !p.Subnet.Contains(netip.MustParseAddr(src)) {
			t.Errorf("Sender(%s, %s) = %v", ip.Addr(), src, p)
		}
	}
	if p := tb.Sender(ip.Addr(), netip.MustParseAddr("10.5.3.9")); p != nil {
		t.Errorf("a source in another host's subnet was accepted: %v", p)
	}
	if a := testing.AllocsPerRun(100, func() { tb.Sender(ip.Addr(), netip.MustParseAddr("10.5.1.9")) }); a != 0 {
		t.Errorf("Sender allocates %v", a)
	}
}
