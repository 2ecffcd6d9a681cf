package tun

import (
	"net/netip"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestSurvivesLinkChanges: the device keeps no goroutine of its own (no
// netlink listener whose unread channel fills up after a few link changes),
// and after many MTU changes and up/down flips it still reads and writes.
func TestSurvivesLinkChanges(t *testing.T) {
	inThrowawayNetns(t)
	before := runtime.NumGoroutine()
	b, name := configured(t, "l")
	link := mustLink(t, name)
	for i := 0; i < 20; i++ {
		if err := netlink.LinkSetMTU(link, 1300+i); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetDown(link); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	// Link down drops the routes: put the configuration back.
	if _, err := Configure(name, NetConfig{Addr: mustPrefix("10.5.3.0/32"), MTU: 1420, Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let any listener see every change (not a pass/fail timing)
	if extra := runtime.NumGoroutine() - before; extra > 0 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines more than before the device existed, want 0:\n%s", extra, buf[:runtime.Stack(buf, true)])
	}
	if _, ok := reflect.TypeOf(b).MethodByName("Events"); ok {
		t.Errorf("%T has an Events method: nothing reads it, so it must not exist", b)
	}
	// Read still works...
	conn := dialUDP(t, "10.5.9.9:4000")
	if _, err := conn.Write([]byte("after the flips")); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := readBufs(b.BatchSize())
	found := false
	for tries := 0; tries < 20 && !found; tries++ {
		n, err := b.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatalf("Read after link changes: %v", err)
		}
		for i := 0; i < n; i++ {
			p := bufs[i][headroom : headroom+sizes[i]]
			if len(p) > 28 && p[9] == 17 && string(p[28:]) == "after the flips" {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("the datagram never came out of the TUN after the link changes")
	}
	// ...and so does Write.
	port := sink(t)
	bufs2 := udpBatch(t, 1, port, 100)
	if _, err := b.Write(bufs2, headroom); err != nil {
		t.Fatalf("Write after link changes: %v", err)
	}
}
