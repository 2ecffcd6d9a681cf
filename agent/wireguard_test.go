package agent

import (
	"net/netip"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/wg"
)

func wgLease(sn, pub string, key wg.Key, port uint16) lease.Lease {
	return lease.Lease{Subnet: netip.MustParsePrefix(sn), Attrs: lease.NewWireGuardAttrs(netip.MustParseAddr(pub), key, port)}
}

// TestPeerSetWireGuard: flanneld's wireguard rules. Only wireguard leases
// are peers, at PublicIP:Port (the own ListenPort when Port is 0); a lease
// without a usable key is rejected; a new key for the same subnet is a
// change.
func TestPeerSetWireGuard(t *testing.T) {
	s := newPeerSet(testNetConfig(t, "wireguard"), lease.Lease{}, zap.NewNop())
	k1, _ := wg.GenerateKey()
	k2, _ := wg.GenerateKey()
	a := wgLease("10.5.7.0/24", "192.168.1.7", k1.PublicKey(), 51000)
	b := wgLease("10.5.8.0/24", "192.168.1.8", k2.PublicKey(), 0)
	udp := lease.Lease{Subnet: netip.MustParsePrefix("10.5.9.0/24"), Attrs: lease.NewUDPAttrs(netip.MustParseAddr("192.168.1.9"))}
	bad := lease.Lease{Subnet: netip.MustParsePrefix("10.5.10.0/24"), Attrs: lease.Attrs{PublicIP: netip.MustParseAddr("192.168.1.10"),
		BackendType: "wireguard", BackendData: []byte(`{"PublicKey":"short","Port":51820}`)}}
	if !s.apply([]lease.Event{{Type: lease.Added, Lease: a}, {Type: lease.Added, Lease: b}, {Type: lease.Added, Lease: udp}, {Type: lease.Added, Lease: bad}}) {
		t.Fatal("wireguard leases must change the peer set")
	}
	peers := s.list()
	if len(peers) != 2 || peers[0].Addr != netip.MustParseAddrPort("192.168.1.7:51000") || peers[1].Addr != netip.MustParseAddrPort("192.168.1.8:51820") {
		t.Fatalf("peers = %+v", peers)
	}
	if s.key(a.Subnet) != k1.PublicKey() || s.key(b.Subnet) != k2.PublicKey() {
		t.Fatal("keys not kept")
	}
	rej := s.rejectedList()
	if len(rej) != 2 || rej[0].Rule != ruleBackendType || rej[1].Rule != ruleBackendData {
		t.Fatalf("rejected = %+v", rej)
	}
	// The node behind 10.5.7.0/24 got a new key (its key file was lost).
	k3, _ := wg.GenerateKey()
	a2 := wgLease("10.5.7.0/24", "192.168.1.7", k3.PublicKey(), 51000)
	if !s.apply([]lease.Event{{Type: lease.Added, Lease: a2}}) || s.key(a.Subnet) != k3.PublicKey() {
		t.Fatal("a changed key must change the peer set")
	}
}

func TestWireGuardKeyFile(t *testing.T) {
	cfg := Config{SubnetFile: "/run/flannel/subnet.env"}
	t.Setenv("WIREGUARD_KEY_FILE", "")
	if got := wireguardKeyFile(cfg); got != wg.DefaultKeyFile {
		t.Fatalf("default key file %s, want flanneld's %s", got, wg.DefaultKeyFile)
	}
	f := filepath.Join(t.TempDir(), "k")
	t.Setenv("WIREGUARD_KEY_FILE", f)
	if got := wireguardKeyFile(cfg); got != f {
		t.Fatalf("WIREGUARD_KEY_FILE ignored: %s", got)
	}
}

// TestWireGuardOneKeyTwoLeases: a node whose public IP changed but kept its
// key has a new lease while its old one lives until its TTL. Both subnets
// go to one wireguard peer for that key (wireguard-go takes one peer per
// key), at the endpoint of the lease seen last, whichever subnet sorts
// first; a third node's peer is untouched.
func TestWireGuardOneKeyTwoLeases(t *testing.T) {
	own, _ := wg.GenerateKey()
	moved, _ := wg.GenerateKey()
	other, _ := wg.GenerateKey()
	for _, tc := range []struct {
		name              string
		first, second     lease.Lease
		wantAddr, wantNew string
	}{
		{"new lease sorts last",
			wgLease("10.5.7.0/24", "192.168.1.7", moved.PublicKey(), 51820),
			wgLease("10.5.8.0/24", "192.168.1.70", moved.PublicKey(), 51820),
			"192.168.1.70:51820", "10.5.8.0/24"},
		{"new lease sorts first",
			wgLease("10.5.8.0/24", "192.168.1.8", moved.PublicKey(), 51820),
			wgLease("10.5.7.0/24", "192.168.1.80", moved.PublicKey(), 51820),
			"192.168.1.80:51820", "10.5.7.0/24"},
	} {
		s := newPeerSet(testNetConfig(t, "wireguard"), lease.Lease{}, zap.NewNop())
		third := wgLease("10.5.9.0/24", "192.168.1.9", other.PublicKey(), 51820)
		s.apply([]lease.Event{{Type: lease.Added, Lease: tc.first}, {Type: lease.Added, Lease: third}})
		s.apply([]lease.Event{{Type: lease.Added, Lease: tc.second}})
		peers := wgPeers(own.PublicKey(), s.list(), s.wgOf, zap.NewNop())
		byKey := map[wg.Key]wg.Peer{}
		for _, p := range peers {
			byKey[p.PublicKey] = p
		}
		m, o := byKey[moved.PublicKey()], byKey[other.PublicKey()]
		if len(peers) != 2 || m.Endpoint.String() != tc.wantAddr || len(m.AllowedIPs) != 2 ||
			m.AllowedIPs[0].String() != tc.wantNew {
			t.Errorf("%s: the moved node's peer %+v (of %d), want endpoint %s and both subnets, %s first",
				tc.name, m, len(peers), tc.wantAddr, tc.wantNew)
		}
		if o.Endpoint.String() != "192.168.1.9:51820" || len(o.AllowedIPs) != 1 {
			t.Errorf("%s: the third node's peer %+v", tc.name, o)
		}
		// The old lease expires: the key keeps the new subnet alone.
		s.apply([]lease.Event{{Type: lease.Removed, Lease: tc.first}})
		peers = wgPeers(own.PublicKey(), s.list(), s.wgOf, zap.NewNop())
		for _, p := range peers {
			if p.PublicKey == moved.PublicKey() && (len(p.AllowedIPs) != 1 || p.AllowedIPs[0].String() != tc.wantNew) {
				t.Errorf("%s: after the old lease expired: %+v", tc.name, p)
			}
		}
	}
}
