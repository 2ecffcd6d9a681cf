//go:build linux

package encap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/netns/netnstest"
)

// TestSpoofedFragNeededLeavesGSOForOthers: felt's socket reaches peers A and
// B over separate veths. A host in A's namespace sends ICMP "fragmentation
// needed" messages with small next-hop MTUs, quoting datagrams from felt's
// socket (and from another socket on felt's host) to A. Afterwards every
// datagram to A and B must arrive byte for byte, and GSO must stay on for B:
// first after the spoofed ICMPs, then after 100 real refusals toward A (A's
// veth made smaller than felt's segments), and while A is held back.
func TestSpoofedFragNeededLeavesGSOForOthers(t *testing.T) {
	netnstest.NeedRoot(t)
	netnstest.NeedTools(t, "ip")
	pid := os.Getpid()
	nsF, nsA, nsB := fmt.Sprintf("fpm%df", pid), fmt.Sprintf("fpm%da", pid), fmt.Sprintf("fpm%db", pid)
	for _, ns := range []string{nsF, nsA, nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	feltA, feltB := netip.MustParseAddr("10.77.1.1"), netip.MustParseAddr("10.77.2.1")
	addrA, addrB := netip.MustParseAddr("10.77.1.2"), netip.MustParseAddr("10.77.2.2")
	for _, l := range []struct {
		ns, peer, here, there string
		local, remote         netip.Addr
	}{{nsA, "tA", "fA", "aF", feltA, addrA}, {nsB, "tB", "fB", "bF", feltB, addrB}} {
		run(t, "ip", "-n", nsF, "link", "add", l.here, "type", "veth", "peer", "name", l.there, "netns", l.ns)
		run(t, "ip", "-n", nsF, "addr", "add", l.local.String()+"/24", "dev", l.here)
		run(t, "ip", "-n", l.ns, "addr", "add", l.remote.String()+"/24", "dev", l.there)
		run(t, "ip", "-n", nsF, "link", "set", l.here, "up")
		run(t, "ip", "-n", l.ns, "link", "set", l.there, "up")
	}

	var tx, rxA, rxB *Conn
	var bystander *net.UDPConn
	inNetns(t, nsF, func() {
		tx = listenT(t, "0.0.0.0:0", DefaultOptions())
		var err error
		if bystander, err = net.ListenUDP("udp4", &net.UDPAddr{}); err != nil {
			t.Fatalf("bystander socket: %v", err)
		}
	})
	t.Cleanup(func() { bystander.Close() })
	inNetns(t, nsA, func() { rxA = listenT(t, "0.0.0.0:0", DefaultOptions()) })
	inNetns(t, nsB, func() { rxB = listenT(t, "0.0.0.0:0", DefaultOptions()) })
	if gso, gro := tx.Offloads(); !gso || !gro {
		t.Skip("kernel lacks UDP GSO or GRO")
	}
	toA := netip.AddrPortFrom(addrA, rxA.LocalAddr().Port())
	toB := netip.AddrPortFrom(addrB, rxB.LocalAddr().Port())
	felt := tx.LocalAddr().Port()
	by := uint16(bystander.LocalAddr().(*net.UDPAddr).Port)
	colA, colB := collect(rxA, Headroom), collect(rxB, Headroom)

	// The spoofed ICMPs, all from A's namespace through A's veth, in order:
	// one quoting the bystander (an ordinary socket: the kernel must take
	// it), one quoting felt's socket, and a marker for B that shows when
	// both before it have been handled.
	inNetns(t, nsA, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			t.Fatalf("raw ICMP socket: %v", err)
		}
		defer unix.Close(fd)
		for _, m := range []struct {
			from uint16
			to   netip.AddrPort
			mtu  uint16
		}{{by, toA, 1000}, {felt, toA, 900}, {by, toB, 1450}} {
			src := feltA
			if m.to.Addr() == addrB {
				src = feltB
			}
			msg := fragNeeded(src, m.from, m.to, m.mtu)
			if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: feltA.As4()}); err != nil {
				t.Fatalf("send spoofed ICMP: %v", err)
			}
		}
	})
	for deadline := time.Now().Add(lossGuard); routeMTU(t, nsF, addrB) != 1450; {
		if time.Now().After(deadline) {
			t.Fatalf("the spoofed ICMP for %s never reached the kernel: route has no mtu 1450", addrB)
		}
		time.Sleep(10 * time.Millisecond)
	}
	switch mtu := routeMTU(t, nsF, addrA); mtu {
	case 1000:
		t.Logf("route to %s: mtu 1000 from the ICMP quoting the bystander; the one quoting felt's socket was ignored", addrA)
	case 900:
		t.Errorf("route to %s: mtu 900: the spoofed ICMP quoting felt's socket lowered the path MTU", addrA)
	default:
		t.Fatalf("route to %s: mtu %d, want 1000 from the ICMP quoting the bystander", addrA, mtu)
	}

	var sentA, sentB [][]byte
	// send writes rounds batches of 8 segments of 1400 bytes to each of
	// toA (if withA) and toB, waiting for each batch to arrive.
	send := func(rounds int, withA bool) {
		t.Helper()
		for range rounds {
			var pkts [][]byte
			var addrs []netip.AddrPort
			for k := range 8 {
				if withA {
					p := payload(1, len(sentA), 1400-k/4) // two GSO runs: 4×1400+1399, 3×1399
					sentA = append(sentA, p)
					pkts, addrs = append(pkts, p), append(addrs, toA)
				}
			}
			for range 8 {
				p := payload(2, len(sentB), 1400)
				sentB = append(sentB, p)
				pkts, addrs = append(pkts, p), append(addrs, toB)
			}
			if err := tx.WriteBatch(pkts, addrs); err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			colA.waitFor(t, len(sentA))
			colB.waitFor(t, len(sentB))
		}
	}
	trainsB := func() uint64 {
		colB.mu.Lock()
		defer colB.mu.Unlock()
		return colB.trains
	}
	// gsoStillOnForB sends to B alone and wants B to receive GSO trains.
	gsoStillOnForB := func(when string) {
		t.Helper()
		if gso, _ := tx.Offloads(); !gso {
			t.Errorf("%s: GSO turned off for every peer", when)
		}
		before := trainsB()
		send(4, false)
		if got := trainsB() - before; got == 0 {
			t.Errorf("%s: B received no GSO trains: its datagrams went out one by one", when)
		}
	}

	st := tx.GSOStats()
	send(100, true)
	if d := delta(st, tx.GSOStats()); d != (GSOStats{Sent: 300}) {
		t.Errorf("after the spoofed ICMPs, 100 batches of 2 runs to A and 1 to B: GSO %+v, want 300 sent and none refused", d)
	}
	gsoStillOnForB("after the spoofed frag-needed toward A")

	// Real refusals: A's veth is now smaller than a 1400-byte segment, so
	// every GSO run to A is refused with EMSGSIZE and goes out as datagrams
	// the kernel fragments. With holds of 0 every batch tries GSO again.
	run(t, "ip", "-n", nsF, "link", "set", "fA", "mtu", "1300")
	tx.wr.holds.min, tx.wr.holds.max = 0, 0
	st = tx.GSOStats()
	send(100, true)
	if d := delta(st, tx.GSOStats()); d.Refused < 100 || d.Sent < 100 {
		t.Errorf("100 batches toward a too-small route to A: GSO %+v, want at least 100 refused (A) and 100 sent (B)", d)
	}
	gsoStillOnForB("after 100 refusals toward A")

	// With a hold longer than the test, A is refused once per segment size
	// (1400, then 1399) and then sent plain without asking the kernel.
	tx.wr.holds.min, tx.wr.holds.max = int64(time.Hour), int64(time.Hour)
	st = tx.GSOStats()
	send(50, true)
	if d := delta(st, tx.GSOStats()); d != (GSOStats{Sent: 50, Refused: 2}) {
		t.Errorf("50 batches with A held: GSO %+v, want 50 sent (B) and 2 refused (A's two sizes, once each)", d)
	}
	if l := tx.wr.holds.limit(toA, tx.wr.now); l != 1398 {
		t.Errorf("GSO limit toward A while held: %d, want 1398 (below both refused sizes)", l)
	}
	if l := tx.wr.holds.limit(toB, tx.wr.now); l != maxGSOBytes {
		t.Errorf("GSO limit toward B: %d, want no limit", l)
	}

	for _, c := range []struct {
		name string
		col  *collector
		sent [][]byte
	}{{"A", colA, sentA}, {"B", colB, sentB}} {
		c.col.mu.Lock()
		for i, g := range c.col.got {
			if !bytes.Equal(g.data, c.sent[i]) {
				t.Errorf("%s datagram %d: %d bytes, want %d: order or content broken", c.name, i, len(g.data), len(c.sent[i]))
				break
			}
		}
		c.col.mu.Unlock()
	}
}

func delta(a, b GSOStats) GSOStats {
	return GSOStats{Sent: b.Sent - a.Sent, Refused: b.Refused - a.Refused}
}

// fragNeeded is an ICMP "fragmentation needed" (type 3 code 4) with
// next-hop MTU mtu, quoting the IPv4 and UDP headers of a datagram from
// src:sport to dst.
func fragNeeded(src netip.Addr, sport uint16, dst netip.AddrPort, mtu uint16) []byte {
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:2], sport)
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], 1408)
	quoted := encaptest.IPv4(src, dst.Addr(), 64, unix.IPPROTO_UDP, udp)
	binary.BigEndian.PutUint16(quoted[2:4], 1428) // the length of the datagram it pretends to quote
	quoted[6] = 0x40                              // DF
	binary.BigEndian.PutUint16(quoted[10:12], 0)
	binary.BigEndian.PutUint16(quoted[10:12], encaptest.Checksum(quoted[:20]))
	msg := append([]byte{3, 4, 0, 0, 0, 0, byte(mtu >> 8), byte(mtu)}, quoted...)
	binary.BigEndian.PutUint16(msg[2:4], encaptest.Checksum(msg))
	return msg
}

var mtuRE = regexp.MustCompile(`\bmtu (\d+)`)

// routeMTU is the path MTU the kernel in ns holds for dst (a route
// exception), or 0 if it holds none.
func routeMTU(t *testing.T, ns string, dst netip.Addr) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "route", "get", dst.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route get %s: %v\n%s", dst, err, out)
	}
	m := mtuRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
