package routertest

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

func TestNetworkDeliversWithSourceAndLosesToNobody(t *testing.T) {
	nw := NewNetwork()
	a, err := nw.Listen(netip.MustParseAddrPort("192.0.2.1:1"), 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nw.Listen(netip.MustParseAddrPort("192.0.2.2:1"), 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nw.Listen(b.LocalAddr(), 4, 8); err == nil {
		t.Error("second Listen on one address succeeded")
	}
	nobody := netip.MustParseAddrPort("192.0.2.9:1")
	pkts := [][]byte{[]byte("one"), []byte("two"), []byte("lost"), []byte("three")}
	if err := a.WriteBatch(pkts, []netip.AddrPort{b.LocalAddr(), b.LocalAddr(), nobody, b.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 16), make([]byte, 16), make([]byte, 16), make([]byte, 16)}
	sizes := make([]int, 4)
	addrs := make([]netip.AddrPort, 4)
	n, err := b.ReadBatch(bufs, sizes, addrs, 10)
	if err != nil || n != 3 {
		t.Fatalf("ReadBatch = %d, %v; want 3 datagrams", n, err)
	}
	for i, w := range []string{"one", "two", "three"} {
		if got := bufs[i][10 : 10+sizes[i]]; string(got) != w || addrs[i] != a.LocalAddr() {
			t.Errorf("datagram %d = %q from %s, want %q from %s", i, got, addrs[i], w, a.LocalAddr())
		}
	}
	if nw.Lost() != 1 {
		t.Errorf("Lost = %d, want 1", nw.Lost())
	}
	b.Close()
	b.Close()
	if _, err := b.ReadBatch(bufs, sizes, addrs, 0); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close = %v, want net.ErrClosed", err)
	}
}

func TestQueueFullDropsAndCounts(t *testing.T) {
	d := NewDevice(8, 2)
	if err := d.Inject([]byte{1}, []byte{2}, []byte{3}); err != nil {
		t.Fatal(err)
	}
	if d.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", d.Dropped())
	}
	bufs := [][]byte{make([]byte, 4), make([]byte, 4), make([]byte, 4)}
	sizes := make([]int, 3)
	if n, err := d.Read(bufs, sizes, 2); err != nil || n != 2 || bufs[0][2] != 1 || bufs[1][2] != 2 {
		t.Fatalf("Read = %d, %v, bufs %v; want packets 1 and 2", n, err, bufs)
	}
}

func TestDeviceWriteRecords(t *testing.T) {
	d := NewDevice(4, 8)
	if _, err := d.Write([][]byte{make([]byte, 20)}, -1); err == nil {
		t.Error("Write with offset -1 succeeded, want an error")
	}
	pkt := append(make([]byte, 10), "payload"...)
	if n, err := d.Write([][]byte{pkt, []byte("bare")}, 0); err != nil || n != 2 {
		t.Fatalf("Write at offset 0 = %d, %v", n, err)
	}
	if n, err := d.Write([][]byte{pkt}, 10); err != nil || n != 1 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	for _, want := range []string{string(pkt), "bare", "payload"} {
		got, err := d.Next(time.Second)
		if err != nil || string(got) != want {
			t.Fatalf("Next = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := d.Next(time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("Next on empty = %v, want ErrTimeout", err)
	}
	d.Close()
	if _, err := d.NextInto(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("NextInto after Close = %v, want net.ErrClosed", err)
	}
}

// TestConnReadViews: ReadViews returns what was sent, in order, as views
// back to back in one array with capacities capped, and net.ErrClosed after
// Close.
func TestConnReadViews(t *testing.T) {
	nw := NewNetwork()
	a, _ := nw.Listen(netip.MustParseAddrPort("192.0.2.1:8472"), 4, 8)
	b, _ := nw.Listen(netip.MustParseAddrPort("192.0.2.2:8472"), 4, 8)
	to := b.LocalAddr()
	if err := a.WriteBatch([][]byte{[]byte("one"), []byte("two"), []byte("three")}, []netip.AddrPort{to, to, to}); err != nil {
		t.Fatal(err)
	}
	views := make([][]byte, 8)
	addrs := make([]netip.AddrPort, 8)
	n, err := b.ReadViews(views, addrs)
	if err != nil || n != 3 {
		t.Fatalf("ReadViews = %d, %v; want 3", n, err)
	}
	for i, w := range []string{"one", "two", "three"} {
		if string(views[i]) != w || addrs[i] != a.LocalAddr() || cap(views[i]) != len(views[i]) {
			t.Errorf("view %d = %q (cap %d) from %s, want %q from %s", i, views[i], cap(views[i]), addrs[i], w, a.LocalAddr())
		}
	}
	if unsafe.Add(unsafe.Pointer(&views[0][0]), len(views[0])) != unsafe.Pointer(&views[1][0]) {
		t.Error("views are not back to back")
	}
	b.Close()
	if _, err := b.ReadViews(views, addrs); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadViews after Close = %v, want net.ErrClosed", err)
	}
}
