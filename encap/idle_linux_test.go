//go:build linux

package encap

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// idlePair is a Conn on loopback and a plain socket connected to it, both
// closed at cleanup.
func idlePair(t *testing.T) (*Conn, *net.UDPConn) {
	t.Helper()
	rx := listenT(t, "127.0.0.1:0", plainOptions())
	tx, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(rx.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	return rx, tx
}

// TestOnIdle: the hook runs when a read finds the socket empty, gets the
// socket's fd, and runs once per wake-up; when it returns true the read
// tries the socket again before it parks, so a datagram that came during
// the hook is read without a wake-up.
func TestOnIdle(t *testing.T) {
	rx, tx := idlePair(t)
	calls, sentIn := 0, 0
	var fds []uintptr
	rx.OnIdle(func(fd uintptr) bool {
		calls++
		fds = append(fds, fd)
		if sentIn > 0 {
			// Parks the read: the datagram comes once it waits.
			go func() {
				time.Sleep(5 * time.Millisecond)
				tx.Write([]byte("later"))
			}()
			return false
		}
		sentIn++
		if _, err := tx.Write([]byte("during the hook")); err != nil {
			t.Error(err)
		}
		return true
	})
	views, addrs := make([][]byte, 4), make([]netip.AddrPort, 4)
	n, err := rx.ReadViews(views, addrs)
	if err != nil || n != 1 || string(views[0]) != "during the hook" {
		t.Fatalf("ReadViews: %d, %v, %q; want the datagram sent in the hook", n, err, views[0])
	}
	if calls != 1 {
		t.Errorf("hook ran %d times, want 1 (the retry found the datagram)", calls)
	}
	var raw uintptr
	rx.raw.Control(func(fd uintptr) { raw = fd })
	if fds[0] != raw {
		t.Errorf("hook got fd %d, the socket is %d", fds[0], raw)
	}

	// Returning false parks the read; the datagram that wakes it is read
	// without another call of the hook.
	n, err = rx.ReadViews(views, addrs)
	if err != nil || n != 1 || string(views[0]) != "later" {
		t.Fatalf("ReadViews: %d, %v, %q; want the later datagram", n, err, views[0])
	}
	if calls != 2 {
		t.Errorf("hook ran %d times over two reads, want 2", calls)
	}
}

// TestOnIdleOncePerWakeUp: a hook that always asks for another try gets one
// per wake-up, not a loop of them until a datagram comes.
func TestOnIdleOncePerWakeUp(t *testing.T) {
	rx, tx := idlePair(t)
	calls := 0
	rx.OnIdle(func(uintptr) bool { calls++; return true })
	go func() {
		time.Sleep(5 * time.Millisecond)
		tx.Write([]byte("x"))
	}()
	views, addrs := make([][]byte, 1), make([]netip.AddrPort, 1)
	if n, err := rx.ReadViews(views, addrs); n != 1 || err != nil {
		t.Fatalf("ReadViews: %d, %v", n, err)
	}
	// One for the wake-up that found the socket empty; a spurious wake-up
	// of the poller could add another.
	if calls < 1 || calls > 2 {
		t.Errorf("hook ran %d times while the read waited 5 ms, want 1", calls)
	}
}
