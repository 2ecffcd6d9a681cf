package agent

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
)

func peerWithMAC(sn, pub string, mac net.HardwareAddr) router.Peer {
	return router.Peer{Subnet: netip.MustParsePrefix(sn), Addr: netip.AddrPortFrom(netip.MustParseAddr(pub), 8472), MAC: [6]byte(mac)}
}

// Two felt agents that share a VtepMAC both resolve at once; a flanneld peer
// (which keeps its MAC) is resolved by felt alone. Either way the MACs end
// different, the framing uses the new one and the file keeps it.
func TestVTEPCollision(t *testing.T) {
	shared := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	dir := t.TempDir()
	a := newVTEP(filepath.Join(dir, "mac"), 1, netip.MustParseAddr("192.168.1.1"), shared)
	b := newVTEP(filepath.Join(dir, "mac"), 1, netip.MustParseAddr("192.168.1.2"), shared)
	stale := peerWithMAC("10.5.9.0/24", "192.168.1.1", shared) // a's own old lease
	if _, ok := a.collision([]router.Peer{stale}); ok {
		t.Fatal("a stale lease of our own PublicIP is not a collision")
	}
	pa, pb := peerWithMAC("10.5.1.0/24", "192.168.1.1", a.current()), peerWithMAC("10.5.2.0/24", "192.168.1.2", b.current())
	core, logs := observer.New(zap.WarnLevel)
	for _, x := range []struct {
		v    *vtep
		peer router.Peer
	}{{a, pb}, {b, pa}} {
		p, ok := x.v.collision([]router.Peer{x.peer})
		if !ok {
			t.Fatalf("%s: no collision found with %+v", x.v.public, x.peer)
		}
		attrs, err := x.v.resolve(p, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		_, mac, err := attrs.VXLAN()
		if err != nil || mac.String() != x.v.current().String() || mac.String() == shared.String() || attrs.PublicIP != x.v.public {
			t.Fatalf("resolve published %v (%v), current %s", attrs, err, x.v.current())
		}
	}
	if a.current().String() == b.current().String() {
		t.Fatalf("both agents moved to %s", a.current())
	}
	// The peer as it was (a flanneld never changes): no collision any more.
	if _, ok := a.collision([]router.Peer{pb}); ok {
		t.Fatal("still a collision after resolve")
	}
	stored, err := os.ReadFile(filepath.Join(dir, "mac"))
	if err != nil || (strings.TrimSpace(string(stored)) != a.current().String() && strings.TrimSpace(string(stored)) != b.current().String()) {
		t.Fatalf("file holds %q (%v), want one of the new MACs", stored, err)
	}
	if e := logs.FilterMessageSnippet("VtepMAC collision").All(); len(e) != 2 || e[0].ContextMap()["file"] != filepath.Join(dir, "mac") {
		t.Fatalf("collision warnings %+v, want 2 naming the file", e)
	}
	checkFramingFollows(t, a, b, shared)
}

// An IPv6 peer that publishes this node's IPv6 VtepMAC (a cloned "-v6"
// file) is a collision of the IPv6 MAC alone: resolve renews that one, stores
// it in its own file and frames IPv6 with it; the IPv4 MAC stays. MACs of
// different families never collide (flanneld keeps them on two devices), and
// an IPv6-only node's unpublished IPv4 MAC collides with nothing.
func TestVTEPCollisionIPv6(t *testing.T) {
	mac4, shared := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 4}, net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 6}
	path := filepath.Join(t.TempDir(), "mac")
	v := newVTEP(path, 1, netip.MustParseAddr("192.168.1.1"), mac4)
	v.public6 = netip.MustParseAddr("fd00::1")
	v.set(mac4, shared)
	for _, p := range []router.Peer{
		peerWithMAC("fd00:5:0:9::/64", "fd00::1", shared), // our own stale lease
		peerWithMAC("fd00:5:0:2::/64", "fd00::2", mac4),   // our IPv4 MAC on an IPv6 peer
		peerWithMAC("10.5.2.0/24", "192.168.1.2", shared), // our IPv6 MAC on an IPv4 peer
	} {
		if _, ok := v.collision([]router.Peer{p}); ok {
			t.Fatalf("%+v taken for a collision", p)
		}
	}
	peer := peerWithMAC("fd00:5:0:2::/64", "fd00::2", shared)
	p, ok := v.collision([]router.Peer{peerWithMAC("10.5.3.0/24", "192.168.1.3", net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 1}), peer})
	if !ok || p != peer {
		t.Fatalf("collision %+v, %v: want %+v", p, ok, peer)
	}
	core, logs := observer.New(zap.WarnLevel)
	attrs, err := v.resolve(p, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	got4, got6 := v.macs()
	if got4.String() != mac4.String() || got6.String() == shared.String() {
		t.Fatalf("after resolve: IPv4 %s (want %s kept), IPv6 %s (want a new one)", got4, mac4, got6)
	}
	if _, m, err := attrs.VXLAN6(); err != nil || m.String() != got6.String() {
		t.Fatalf("published BackendV6Data MAC %s (%v), want %s", m, err, got6)
	}
	if _, m, err := attrs.VXLAN(); err != nil || m.String() != mac4.String() {
		t.Fatalf("published BackendData MAC %s (%v), want %s", m, err, mac4)
	}
	if b, err := os.ReadFile(path + "-v6"); err != nil || strings.TrimSpace(string(b)) != got6.String() {
		t.Fatalf("%s-v6 holds %q (%v), want %s", path, b, err, got6)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("resolving the IPv6 MAC wrote the IPv4 MAC's file")
	}
	if e := logs.FilterMessageSnippet("IPv6 VtepMAC").All(); len(e) != 1 || e[0].ContextMap()["file"] != path+"-v6" {
		t.Fatalf("collision warnings %+v, want 1 naming %s-v6", e, path)
	}
	if _, ok := v.collision([]router.Peer{peer}); ok {
		t.Fatal("still a collision after resolve")
	}
	pkt := encaptest.IPv6(netip.MustParseAddr("fd00:5:0:1::1"), netip.MustParseAddr("fd00:5:0:2::1"), 64, 17, make([]byte, 8))
	buf := make([]byte, encap.Headroom+len(pkt))
	copy(buf[encap.Headroom:], pkt)
	f, r := v.framing().Encap(buf, encap.Headroom, len(pkt), peer.MAC)
	if r != drop.OK || net.HardwareAddr(f[14:20]).String() != got6.String() {
		t.Fatalf("IPv6 frame source MAC %s (%v), want %s", net.HardwareAddr(f[14:20]), r, got6)
	}
}

// An IPv6-only node's IPv4 MAC is not published and collides with nothing;
// its IPv6 MAC does, and the renewal publishes no BackendData.
func TestVTEPCollisionIPv6Only(t *testing.T) {
	mac4, shared := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 4}, net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 6}
	only := newVTEP(filepath.Join(t.TempDir(), "mac"), 1, netip.IPv4Unspecified(), mac4)
	only.public6, only.v6only = netip.MustParseAddr("fd00::1"), true
	only.set(mac4, shared)
	if _, ok := only.collision([]router.Peer{peerWithMAC("10.5.2.0/24", "192.168.1.2", mac4)}); ok {
		t.Fatal("an IPv6-only node's unpublished IPv4 MAC taken for a collision")
	}
	p, ok := only.collision([]router.Peer{peerWithMAC("fd00:5:0:2::/64", "fd00::2", shared)})
	if !ok {
		t.Fatal("an IPv6-only node's IPv6 MAC collision not found")
	}
	attrs, err := only.resolve(p, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	_, only6 := only.macs()
	if _, m, err := attrs.VXLAN6(); err != nil || m.String() != only6.String() || only6.String() == shared.String() {
		t.Fatalf("IPv6-only renewal published BackendV6Data MAC %s (%v), now using %s", m, err, only6)
	}
	if attrs.BackendData != nil || attrs.PublicIP != netip.IPv4Unspecified() {
		t.Fatalf("IPv6-only renewal published BackendData %s and PublicIP %s, want none and 0.0.0.0", attrs.BackendData, attrs.PublicIP)
	}
}

// checkFramingFollows: a's frames carry its new source MAC; b accepts frames
// to its new MAC and refuses those to the old one.
func checkFramingFollows(t *testing.T, a, b *vtep, old net.HardwareAddr) {
	t.Helper()
	pkt := encaptest.IPv4(netip.MustParseAddr("10.5.1.1"), netip.MustParseAddr("10.5.2.1"), 64, 17, make([]byte, 8))
	buf := make([]byte, encap.Headroom+len(pkt))
	copy(buf[encap.Headroom:], pkt)
	f, r := a.framing().Encap(buf, encap.Headroom, len(pkt), [6]byte(b.current()))
	if r != drop.OK || net.HardwareAddr(f[14:20]).String() != a.current().String() {
		t.Fatalf("frame source MAC %s (%v), want %s", net.HardwareAddr(f[14:20]), r, a.current())
	}
	if _, r := b.framing().Decap(f); r != drop.OK {
		t.Fatalf("b refuses a frame to its new MAC: %v", r)
	}
	other := encap.NewVXLAN(1, [6]byte(net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 9}))
	copy(buf[encap.Headroom:], pkt)
	f, _ = other.Encap(buf, encap.Headroom, len(pkt), [6]byte(old))
	if _, r := b.framing().Decap(f); r != drop.NotForUs {
		t.Fatalf("b takes a frame to its old MAC: %v", r)
	}
}

// fakeEngine records what the node hands the packet path.
type fakeEngine struct {
	forwarder
	framers []router.Framer
}

func (f *fakeEngine) SetFramer(fr router.Framer) error { f.framers = append(f.framers, fr); return nil }

// fakeKeeper records republished attrs.
type fakeKeeper struct {
	keeper
	attrs []lease.Attrs
}

func (f *fakeKeeper) Republish(a lease.Attrs) { f.attrs = append(f.attrs, a) }

// checkVtepMAC hands the engine the framing of the new VtepMAC, and the
// keeper the lease attrs that publish it; without a collision, neither.
func TestCheckVtepMACSwapsFraming(t *testing.T) {
	shared := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	eng, kp := &fakeEngine{}, &fakeKeeper{}
	v := newVTEP(filepath.Join(t.TempDir(), "mac"), 1, netip.MustParseAddr("192.168.1.1"), shared)
	n := &node{log: zap.NewNop(), plane: &plane{vtep: v}, eng: eng, keeper: kp}
	other := peerWithMAC("10.5.2.0/24", "192.168.1.2", net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 2})
	n.checkVtepMAC([]router.Peer{other})
	if len(eng.framers) != 0 || len(kp.attrs) != 0 {
		t.Fatalf("no collision, yet %d framers and %d republishes", len(eng.framers), len(kp.attrs))
	}
	n.checkVtepMAC([]router.Peer{other, peerWithMAC("10.5.3.0/24", "192.168.1.3", shared)})
	if len(eng.framers) != 1 || len(kp.attrs) != 1 {
		t.Fatalf("after a collision: %d framers and %d republishes, want 1 and 1", len(eng.framers), len(kp.attrs))
	}
	if eng.framers[0] != router.Framer(v.framing()) {
		t.Error("the engine got a framing other than the vtep's current one")
	}
	pkt := encaptest.IPv4(netip.MustParseAddr("10.5.1.1"), netip.MustParseAddr("10.5.2.1"), 64, 17, make([]byte, 8))
	buf := make([]byte, encap.Headroom+len(pkt))
	copy(buf[encap.Headroom:], pkt)
	f, r := eng.framers[0].Encap(buf, encap.Headroom, len(pkt), other.MAC)
	if r != drop.OK || net.HardwareAddr(f[14:20]).String() != v.current().String() || v.current().String() == shared.String() {
		t.Fatalf("frames carry source MAC %s (%v), want the new %s", net.HardwareAddr(f[14:20]), r, v.current())
	}
	if _, mac, err := kp.attrs[0].VXLAN(); err != nil || mac.String() != v.current().String() {
		t.Fatalf("republished %v (%v), want the new MAC %s", kp.attrs[0], err, v.current())
	}
}

// A flanneld peer that shares both MACs (it never changes, so no later
// event comes): one checkVtepMAC moves off both, with one framing and one
// republish.
func TestCheckVtepMACBothFamilies(t *testing.T) {
	mac4, mac6 := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 4}, net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 6}
	eng, kp := &fakeEngine{}, &fakeKeeper{}
	v := newVTEP(filepath.Join(t.TempDir(), "mac"), 1, netip.MustParseAddr("192.168.1.1"), mac4)
	v.public6 = netip.MustParseAddr("fd00::1")
	v.set(mac4, mac6)
	n := &node{log: zap.NewNop(), plane: &plane{vtep: v}, eng: eng, keeper: kp}
	n.checkVtepMAC([]router.Peer{peerWithMAC("10.5.2.0/24", "192.168.1.2", mac4), peerWithMAC("fd00:5:0:2::/64", "fd00::2", mac6)})
	if len(eng.framers) != 1 || len(kp.attrs) != 1 {
		t.Fatalf("%d framers and %d republishes, want 1 and 1", len(eng.framers), len(kp.attrs))
	}
	got4, got6 := v.macs()
	if got4.String() == mac4.String() || got6.String() == mac6.String() {
		t.Fatalf("MACs now %s and %s: want both moved off %s and %s", got4, got6, mac4, mac6)
	}
	_, p4, err4 := kp.attrs[0].VXLAN()
	_, p6, err6 := kp.attrs[0].VXLAN6()
	if err4 != nil || err6 != nil || p4.String() != got4.String() || p6.String() != got6.String() {
		t.Fatalf("republished %s (%v) and %s (%v), want %s and %s", p4, err4, p6, err6, got4, got6)
	}
}

func TestVtepMACPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", VtepMACFile)
	mac, created, err := loadOrCreateMAC(path)
	if err != nil || !created {
		t.Fatalf("first load: %v, created %v", err, created)
	}
	if mac[0]&1 != 0 || mac[0]&2 == 0 {
		t.Fatalf("MAC %s must be unicast and locally administered", mac)
	}
	again, created, err := loadOrCreateMAC(path)
	if err != nil || created || again.String() != mac.String() {
		t.Fatalf("second load = %s (created %v, %v), want %s", again, created, err, mac)
	}
	os.WriteFile(path, []byte("01:00:5e:00:00:01\n"), 0o644)
	if _, _, err := loadOrCreateMAC(path); err == nil || !strings.Contains(err.Error(), "not a unicast") {
		t.Fatalf("multicast MAC in file: err = %v", err)
	}
}
