package tun

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/feltnet/felt/netns/netnstest"
)

// devName is unique per test process and letter, as other engineers run
// tests on the same machine at the same time.
func devName(letter string) string {
	return fmt.Sprintf("ftun%d%s", os.Getpid(), letter)
}

// testOptions are DefaultOptions, with io_uring reads too when the
// environment has FELT_TUN_TEST_READS=io_uring: the suite runs on the
// default path, on io_uring for both directions with that, and on
// read/writev with FELT_IO_URING=off.
func testOptions() Options {
	o := DefaultOptions()
	o.IOUringReads = os.Getenv("FELT_TUN_TEST_READS") == "io_uring"
	return o
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func createTUN(t testing.TB, name string, mtu int) *Device {
	t.Helper()
	dev, err := CreateWith(name, mtu, testOptions())
	if err != nil {
		t.Fatalf("CreateWith(%s, %d): %v", name, mtu, err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

// mustLink is netlink.LinkByName that fails the test without the link.
func mustLink(t testing.TB, name string) netlink.Link {
	t.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// run is netnstest.Output: a command's output, or the test fails.
func run(t *testing.T, name string, args ...string) string { return netnstest.Output(t, name, args...) }

func TestCreateHasOffloads(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("o")
	dev := createTUN(t, name, 1420)

	off, err := dev.Offloads()
	if err != nil {
		t.Fatal(err)
	}
	if !off.VnetHdr || !off.TSO || !off.Checksum {
		t.Errorf("offloads = %v, want vnet_hdr, tso and csum on", off)
	}
	if dev.BatchSize() < 2 {
		t.Errorf("BatchSize = %d, want > 1 with offloads", dev.BatchSize())
	}
	if mtu, err := dev.MTU(); err != nil || mtu != 1420 {
		t.Errorf("MTU() = %d, %v; want 1420", mtu, err)
	}
	if k := run(t, "ethtool", "-k", name); !strings.Contains(k, "tcp-segmentation-offload: on") {
		t.Errorf("ethtool -k %s does not show TSO on:\n%s", name, k)
	}
	if d := run(t, "ip", "-d", "link", "show", name); !strings.Contains(d, "tun type tun") || !strings.Contains(d, "vnet_hdr on") {
		t.Errorf("ip -d link show %s: want a TUN with vnet_hdr on:\n%s", name, d)
	}
}

func TestConfigure(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("c")
	createTUN(t, name, 0)

	link := mustLink(t, name)
	// A stale address inside the Network (an old lease) and one outside it.
	for _, a := range []string{"10.5.7.0/32", "192.168.77.1/24"} {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(mustPrefix(a))}); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
	}
	c := NetConfig{Addr: mustPrefix("10.5.3.0/32"), MTU: 1450, Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}}
	for round := 1; round <= 2; round++ { // the second round proves it is idempotent
		skipped, err := Configure(name, c)
		if err != nil || len(skipped) != 0 {
			t.Fatalf("round %d: Configure = %q, %v; want nothing skipped, no error", round, skipped, err)
		}
	}

	link = mustLink(t, name)
	if got := link.Attrs().MTU; got != 1450 {
		t.Errorf("MTU = %d, want 1450", got)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("link %s is not up", name)
	}
	addrs, err := linkAddrs(link)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, a := range addrs {
		have = append(have, a.prefix.String())
	}
	if !slices.Contains(have, "10.5.3.0/32") || !slices.Contains(have, "192.168.77.1/24") || slices.Contains(have, "10.5.7.0/32") {
		t.Errorf("addresses = %v; want 10.5.3.0/32 and 192.168.77.1/24, not the stale 10.5.7.0/32", have)
	}
	if d := run(t, "ip", "-d", "addr", "show", "dev", name); !strings.Contains(d, "inet 10.5.3.0/32 scope global "+name) {
		t.Errorf("ip -d addr show %s lacks 10.5.3.0/32:\n%s", name, d)
	}
	if r := run(t, "ip", "route", "show", "10.5.0.0/16"); !strings.Contains(r, "dev "+name) {
		t.Errorf("route 10.5.0.0/16 not via %s: %q", name, r)
	}

	if err := DelRoute(name, mustPrefix("10.5.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "ip", "route", "show", "10.5.0.0/16"); r != "" {
		t.Errorf("route still there after DelRoute: %q", r)
	}
	if err := DelRoute(name, mustPrefix("10.5.0.0/16")); err != nil {
		t.Errorf("DelRoute of a missing route: %v, want nil", err)
	}
	if err := AddRoute(name, mustPrefix("10.6.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, "ip", "route", "show", "10.6.0.0/16"); !strings.Contains(r, "dev "+name) {
		t.Errorf("AddRoute: route 10.6.0.0/16 not via %s: %q", name, r)
	}
}

func TestCreateRefusesOtherLinks(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("b")
	run(t, "ip", "link", "add", name, "type", "bridge")
	if _, err := Create(name, 0); err == nil || !strings.Contains(err.Error(), "not a TUN") {
		t.Errorf("Create over a bridge: %v; want an error saying it is not a TUN", err)
	}
	if err := Remove(name); err == nil {
		t.Errorf("Remove of a bridge succeeded; it must leave non-TUN links alone")
	}
	if _, err := netlink.LinkByName(name); err != nil {
		t.Errorf("bridge gone: %v", err)
	}
}

func TestRemove(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("r")
	run(t, "ip", "tuntap", "add", "dev", name, "mode", "tun")
	dev := createTUN(t, name, 0) // attaching to an existing persistent TUN
	dev.Close()
	if _, err := netlink.LinkByName(name); err != nil {
		t.Fatalf("persistent TUN gone after Close: %v", err)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		t.Errorf("%s still exists after Remove", name)
	}
	if err := Remove(name); err != nil {
		t.Errorf("second Remove: %v, want nil", err)
	}
}

// TestConfigureExclusive: on a device that is felt's alone, a previous run
// under another Network leaves no address and no route behind (felt0 is
// persistent, so the next felt finds them).
func TestConfigureExclusive(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("x")
	createTUN(t, name, 0)
	old := NetConfig{Addr: mustPrefix("10.5.40.0/32"), Network: mustPrefix("10.5.0.0/16"),
		Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}, Exclusive: true}
	if _, err := Configure(name, old); err != nil {
		t.Fatal(err)
	}
	c := NetConfig{Addr: mustPrefix("10.6.36.0/32"), Network: mustPrefix("10.6.0.0/16"),
		Routes: []netip.Prefix{mustPrefix("10.6.0.0/16")}, Exclusive: true}
	if skipped, err := Configure(name, c); err != nil || len(skipped) != 0 {
		t.Fatalf("Configure = %q, %v", skipped, err)
	}
	link := mustLink(t, name)
	addrs, err := linkAddrs(link)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, a := range addrs {
		if a.prefix.Addr().Is4() {
			have = append(have, a.prefix.String())
		}
	}
	if !slices.Equal(have, []string{"10.6.36.0/32"}) {
		t.Errorf("IPv4 addresses = %v; want only 10.6.36.0/32", have)
	}
	if r := run(t, "ip", "route", "show", "10.5.0.0/16"); r != "" {
		t.Errorf("the old Network's route is still there: %q", r)
	}
	if r := run(t, "ip", "route", "show", "10.6.0.0/16"); !strings.Contains(r, "dev "+name) {
		t.Errorf("route 10.6.0.0/16 not via %s: %q", name, r)
	}
}
