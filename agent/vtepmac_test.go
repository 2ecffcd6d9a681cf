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
