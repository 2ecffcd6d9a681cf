//go:build linux

package encap

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestReusePortKeepsEachSenderOnOneConn: two Conns share a port with
// ReusePort; 32 senders (each its own source port, as each peer is) send 8
// datagrams each. Every sender's datagrams must all land on one Conn, in
// order, and both Conns must get some senders (all 32 on one: 2^-31).
func TestReusePortKeepsEachSenderOnOneConn(t *testing.T) {
	o := DefaultOptions()
	o.ReusePort = true
	a := listenT(t, "127.0.0.1:0", o)
	b := listenT(t, a.LocalAddr().String(), o)
	if a.LocalAddr() != b.LocalAddr() {
		t.Fatalf("the second Conn bound %s, want %s", b.LocalAddr(), a.LocalAddr())
	}
	cols := []*collector{collect(a, Headroom), collect(b, Headroom)}

	const senders, per = 32, 8
	for s := range senders {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(a.LocalAddr()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range per {
			if _, err := c.Write(payload(s, i, 100)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	for cols[0].count()+cols[1].count() < senders*per {
		select {
		case <-cols[0].more:
		case <-cols[1].more:
		case err := <-cols[0].done:
			t.Fatal(err)
		case err := <-cols[1].done:
			t.Fatal(err)
		}
	}
	connOf := map[netip.AddrPort]int{}
	used := map[int]int{}
	for k, col := range cols {
		col.mu.Lock()
		next := map[netip.AddrPort]int{}
		for _, r := range col.got {
			if q, ok := connOf[r.from]; ok && q != k {
				t.Errorf("sender %s reached both Conns", r.from)
			}
			if connOf[r.from] = k; next[r.from] == 0 {
				used[k]++
			}
			if want := payload(int(r.data[1]), next[r.from], 100); string(r.data) != string(want) {
				t.Errorf("sender %s: datagram %d out of order or damaged", r.from, next[r.from])
			}
			next[r.from]++
		}
		col.mu.Unlock()
	}
	if len(used) != 2 {
		t.Errorf("senders per Conn %v: want both Conns used", used)
	}
	t.Logf("senders per Conn: %v", used)
}

// TestReusePortOnlyWhenAsked: without ReusePort a second Conn on the port is
// refused as before, with the message that names the port.
func TestReusePortOnlyWhenAsked(t *testing.T) {
	a := listenT(t, "127.0.0.1:0", DefaultOptions())
	o := DefaultOptions()
	o.ReusePort = true
	for _, opts := range []Options{DefaultOptions(), o} {
		if c, err := Listen(a.LocalAddr(), opts); err == nil || !strings.Contains(err.Error(), "already in use") {
			if c != nil {
				c.Close()
			}
			t.Errorf("ReusePort %v on a port a plain Conn holds: %v, want already in use", opts.ReusePort, err)
		}
	}
}
