//go:build linux

package encap

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"unsafe"
)

// sendRun sends n datagrams of size bytes (payload(0, i, size)) from tx to
// rx in one WriteBatch (one GSO send, so one GRO train where both are on)
// and returns them.
func sendRun(t testing.TB, tx, rx *Conn, n, size int) [][]byte {
	t.Helper()
	pkts := make([][]byte, n)
	addrs := make([]netip.AddrPort, n)
	for i := range pkts {
		pkts[i] = payload(0, i, size)
		addrs[i] = rx.LocalAddr()
	}
	if err := tx.WriteBatch(pkts, addrs); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	return pkts
}

// within reports whether v lies inside buf.
func within(v, buf []byte) bool {
	p, b := uintptr(unsafe.Pointer(unsafe.SliceData(v))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= b && p+uintptr(len(v)) <= b+uintptr(len(buf))
}

// readAllViews is readAll with ReadViews: it reads from rx until want
// datagrams have arrived, each view valid until the next read.
func readAllViews(rx *Conn, views [][]byte, from []netip.AddrPort, want int) error {
	for got := 0; got < want; {
		k, err := rx.ReadViews(views, from)
		if err != nil {
			return fmt.Errorf("after %d of %d datagrams: %w", got, want, err)
		}
		got += k
	}
	return nil
}

// inConn reports whether v lies inside one of c's receive buffers.
func inConn(c *Conn, v []byte) bool {
	for _, b := range c.rd.bufs {
		if within(v, b) {
			return true
		}
	}
	return false
}

// TestReadViewsNoCopy: ReadViews hands out every datagram, in order, as a
// view of the Conn's own receive buffers; with GRO the datagrams of one
// train are views back to back in one buffer (nothing was copied apart),
// and each view's capacity ends where the datagram ends.
func TestReadViewsNoCopy(t *testing.T) {
	for _, o := range []Options{DefaultOptions(), plainOptions()} {
		t.Run(fmt.Sprintf("gro=%v", o.GRO), func(t *testing.T) {
			tx := listenT(t, "127.0.0.1:0", o)
			rx := listenT(t, "127.0.0.1:0", o)
			pkts := sendRun(t, tx, rx, 30, 1000)
			views := make([][]byte, 64)
			from := make([]netip.AddrPort, 64)
			var got [][]byte
			backToBack := 0
			for len(got) < len(pkts) {
				n, err := rx.ReadViews(views, from)
				if err != nil {
					t.Fatalf("ReadViews: %v", err)
				}
				for i, v := range views[:n] {
					if cap(v) != len(v) {
						t.Fatalf("view %d: cap %d, len %d: an append would run into the next datagram", len(got), cap(v), len(v))
					}
					if !inConn(rx, v) {
						t.Fatalf("view %d is not in the Conn's receive buffers", len(got))
					}
					if from[i] != tx.LocalAddr() {
						t.Fatalf("view %d from %s, want %s", len(got), from[i], tx.LocalAddr())
					}
					if i > 0 && unsafe.Pointer(unsafe.SliceData(v)) == unsafe.Add(unsafe.Pointer(unsafe.SliceData(views[i-1])), len(views[i-1])) {
						backToBack++
					}
					got = append(got, bytes.Clone(v))
				}
			}
			for i := range pkts {
				if !bytes.Equal(got[i], pkts[i]) {
					t.Fatalf("datagram %d differs (order or content broken)", i)
				}
			}
			if gro := rx.rd.trainsSplit > 0; gro && backToBack == 0 {
				t.Error("a GRO train arrived but no two views lay back to back")
			} else if o.GRO && !gro {
				t.Log("no GRO train arrived: only single datagrams were seen")
			}
		})
	}
}

// TestReadViewsTrainAcrossCalls: a train longer than the caller's views
// continues on the next calls, in order, nothing lost.
func TestReadViewsTrainAcrossCalls(t *testing.T) {
	tx := listenT(t, "127.0.0.1:0", DefaultOptions())
	rx := listenT(t, "127.0.0.1:0", DefaultOptions())
	if gso, gro := tx.Offloads(); !gso || !gro {
		t.Skip("kernel lacks UDP GSO or GRO")
	}
	pkts := sendRun(t, tx, rx, 30, 1000)
	views := make([][]byte, 4)
	from := make([]netip.AddrPort, 4)
	var got [][]byte
	for len(got) < len(pkts) {
		n, err := rx.ReadViews(views, from)
		if err != nil {
			t.Fatalf("ReadViews: %v", err)
		}
		for _, v := range views[:n] {
			got = append(got, bytes.Clone(v))
		}
	}
	for i := range pkts {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("datagram %d differs (order or content broken)", i)
		}
	}
	if rx.rd.trainsSplit == 0 {
		t.Error("no GRO train arrived; the split path was not exercised")
	}
}

func TestReadViewsAllocs(t *testing.T) {
	for _, o := range []Options{DefaultOptions(), plainOptions()} {
		t.Run(fmt.Sprintf("gso=%v,gro=%v", o.GSO, o.GRO), func(t *testing.T) {
			const n = 32
			tx, rx, pkts, addrs := loopbackPair(t, o, n, 1200)
			views := make([][]byte, n)
			from := make([]netip.AddrPort, n)
			allocs := cycleAllocs(t, 50, tx, pkts, addrs, func() error { return readAllViews(rx, views, from, n) })
			if allocs != 0 {
				t.Fatalf("WriteBatch+ReadViews of %d datagrams: %.1f allocations per cycle, want 0", n, allocs)
			}
		})
	}
}

func TestReadViewsArgs(t *testing.T) {
	c := listenT(t, "127.0.0.1:0", DefaultOptions())
	if _, err := c.ReadViews(nil, make([]netip.AddrPort, 1)); err == nil {
		t.Error("ReadViews with no views succeeded")
	}
}
