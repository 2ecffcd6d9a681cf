package wg

import (
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/feltnet/felt/netns/netnstest"
	"github.com/feltnet/felt/tun"
)

// TestSetPeers runs wireguard-go on a real felt TUN in a throwaway
// namespace and checks that SetPeers adds, changes and removes peers as the
// device reports them, and refuses duplicate and own keys.
func TestSetPeers(t *testing.T) {
	d := testTUN(t, "wgtest0")
	priv, _ := GenerateKey()
	psk, _ := GenerateKey()
	w, err := New(d, Config{PrivateKey: priv, ListenPort: 51820, PSK: &psk, Keepalive: 0}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	k3, _ := GenerateKey()
	p1 := Peer{PublicKey: k1.PublicKey(), Endpoint: netip.MustParseAddrPort("10.0.0.1:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.5.1.0/24")}}
	p2 := Peer{PublicKey: k2.PublicKey(), Endpoint: netip.MustParseAddrPort("10.0.0.2:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.5.2.0/24")}}
	check := func(want ...Peer) {
		t.Helper()
		st, err := w.Stats()
		if err != nil {
			t.Fatal(err)
		}
		got := map[Key]PeerStats{}
		for _, s := range st {
			got[s.PublicKey] = s
		}
		if len(got) != len(want) {
			t.Fatalf("device has %d peers, want %d: %+v", len(got), len(want), st)
		}
		for _, p := range want {
			s, ok := got[p.PublicKey]
			if !ok || s.Endpoint != p.Endpoint || len(s.AllowedIPs) != 1 || s.AllowedIPs[0] != p.AllowedIPs[0] {
				t.Fatalf("peer %s: %+v, want %+v", p.PublicKey, s, p)
			}
		}
	}
	if err := w.SetPeers([]Peer{p1, p2}); err != nil {
		t.Fatal(err)
	}
	check(p1, p2)
	// p1 moves, p2 goes, p3 takes p2's subnet under a new key.
	p1.Endpoint = netip.MustParseAddrPort("10.0.0.9:51000")
	p3 := Peer{PublicKey: k3.PublicKey(), Endpoint: p2.Endpoint, AllowedIPs: p2.AllowedIPs}
	if err := w.SetPeers([]Peer{p1, p3}); err != nil {
		t.Fatal(err)
	}
	check(p1, p3)
	if err := w.SetPeers([]Peer{p1, {PublicKey: p1.PublicKey, Endpoint: p2.Endpoint, AllowedIPs: p2.AllowedIPs}}); err == nil ||
		!strings.Contains(err.Error(), "given for both") {
		t.Fatalf("duplicate key: %v", err)
	}
	if err := w.SetPeers([]Peer{{PublicKey: w.PublicKey(), Endpoint: p2.Endpoint, AllowedIPs: p2.AllowedIPs}}); err == nil ||
		!strings.Contains(err.Error(), "own public key") {
		t.Fatalf("own key: %v", err)
	}
	check(p1, p3)
	if err := w.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	check()
}

// testTUN enters a throwaway namespace for the rest of the test and
// creates a felt TUN named name there.
func testTUN(t *testing.T, name string) *tun.Device {
	t.Helper()
	netnstest.Enter(t)
	d, err := tun.Create(name, 1420)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
