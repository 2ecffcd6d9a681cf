package routertest

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
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

func TestDeviceWriteRecordsAndWantsHeadroom(t *testing.T) {
	d := NewDevice(4, 8)
	if _, err := d.Write([][]byte{make([]byte, 20)}, 9); err == nil {
		t.Error("Write with offset 9 succeeded, want an error (virtio header room)")
	}
	pkt := append(make([]byte, 10), "payload"...)
	if n, err := d.Write([][]byte{pkt}, 10); err != nil || n != 1 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got, err := d.Next(time.Second)
	if err != nil || !bytes.Equal(got, []byte("payload")) {
		t.Fatalf("Next = %q, %v; want payload", got, err)
	}
	if _, err := d.Next(time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("Next on empty = %v, want ErrTimeout", err)
	}
	d.Close()
	if _, err := d.NextInto(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("NextInto after Close = %v, want net.ErrClosed", err)
	}
}
