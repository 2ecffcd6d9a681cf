package tun

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/feltnet/felt/internal/drop"
)

// csumMode says how a crafted packet's transport checksum is filled.
type csumMode int

const (
	csumFull    csumMode = iota // correct and complete
	csumPartial                 // the bare pseudo-header sum, as a kernel vxlan peer leaves it
	csumZero                    // UDP only: 0, "no checksum"
)

// craftUDP builds an IPv4 UDP datagram 10.5.9.9:40000 → 10.5.3.0:port.
func craftUDP(t testing.TB, port uint16, id uint16, payload []byte, mode csumMode) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 5, 9, 9), DstIP: net.IPv4(10, 5, 3, 0)}
	udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ip)
	pkt := serialize(t, ip, udp, gopacket.Payload(payload))
	switch mode {
	case csumPartial:
		binary.BigEndian.PutUint16(pkt[26:], csumFold(pseudoSum(pkt[12:16], pkt[16:20], 17, len(pkt)-20)))
	case csumZero:
		pkt[26], pkt[27] = 0, 0
	}
	return pkt
}

// corrupt flips one payload byte after the checksums were computed, as a
// bit error the outer checksum did not catch would.
func corrupt(pkt []byte) []byte {
	pkt[len(pkt)-1] ^= 0x5a
	return pkt
}

// udpInbox binds 10.5.3.0:port and returns the payloads that arrive until
// one equals last (written last, so everything before it has arrived too).
func udpInbox(t *testing.T, port int) func(last []byte) [][]byte {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func(last []byte) [][]byte {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got [][]byte
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("after %d datagrams: %v (the last one, %q, never arrived)", len(got), err, last)
			}
			got = append(got, append([]byte(nil), buf[:n]...))
			if bytes.Equal(buf[:n], last) {
				return got
			}
		}
	}
}

// expectWriteDrops checks what dev's Write dropped since the last call.
func expectWriteDrops(t *testing.T, dev *Device, want map[drop.Reason]uint32) {
	t.Helper()
	var got [drop.NumReasons]uint32
	dev.WriteDrops(&got)
	if got[drop.OK] != 0 {
		t.Errorf("write drops report %d under %v: Write's count of what passed leaked out", got[drop.OK], drop.OK)
	}
	for k := drop.OK + 1; k < drop.NumReasons; k++ {
		if got[k] != want[k] {
			t.Errorf("write drops %v: %d, want %d", k, got[k], want[k])
		}
	}
}

func payloadOf(s string, n int) []byte { return bytes.Repeat([]byte(s), n) }

// TestWriteDropsCorruptUDP: datagrams whose payload was damaged after their
// checksum was computed never reach a socket, alone or inside a coalesced
// run; correct ones, bare pseudo-header sums and IPv4 "no checksum" do.
func TestWriteDropsCorruptUDP(t *testing.T) {
	dev, _ := batchedT(t, "v")
	const port = 5100
	inbox := udpInbox(t, port)

	good := payloadOf("good-", 20)
	bad := payloadOf("bad--", 20)
	var pkts [][]byte
	pkts = append(pkts, corrupt(craftUDP(t, port, 1, bad, csumFull)))               // alone, full checksum
	pkts = append(pkts, craftUDP(t, port, 2, []byte("lone correct"), csumFull))     // alone
	pkts = append(pkts, craftUDP(t, port, 3, []byte("lone no-checksum"), csumZero)) // IPv4: no checksum
	pkts = append(pkts, craftUDP(t, port, 4, []byte("lone partial"), csumPartial))  // alone, bare pseudo-header sum
	// A run of one flow, equal sizes: 2nd of 4 corrupted, 3rd partial.
	pkts = append(pkts, craftUDP(t, port, 5, good, csumFull))
	pkts = append(pkts, corrupt(craftUDP(t, port, 6, bad, csumFull)))
	pkts = append(pkts, craftUDP(t, port, 7, good, csumPartial))
	pkts = append(pkts, craftUDP(t, port, 8, payloadOf("last-", 20), csumFull))
	if _, err := dev.Write(headroomed(pkts...), headroom); err != nil {
		t.Logf("Write: %v", err)
	}
	got := inbox(payloadOf("last-", 20))
	expectWriteDrops(t, dev, map[drop.Reason]uint32{drop.BadChecksum: 2})
	want := [][]byte{[]byte("lone correct"), []byte("lone no-checksum"), []byte("lone partial"), good, good, payloadOf("last-", 20)}
	if len(got) != len(want) {
		t.Fatalf("socket read %d datagrams %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("datagram %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestWriteDropsBadIPv4Header: a datagram whose IPv4 header was damaged
// after its header checksum was computed is dropped, also as the head of a
// coalesced run (whose header Write rewrites).
func TestWriteDropsBadIPv4Header(t *testing.T) {
	dev, _ := batchedT(t, "h")
	const port = 5101
	inbox := udpInbox(t, port)
	head := craftUDP(t, port, 1, payloadOf("head-", 20), csumFull)
	head[5] ^= 0x01 // the IP ID: covered by the header checksum only
	pkts := [][]byte{head,
		craftUDP(t, port, 2, payloadOf("next-", 20), csumFull),
		craftUDP(t, port, 3, payloadOf("last-", 20), csumFull)}
	if _, err := dev.Write(headroomed(pkts...), headroom); err != nil {
		t.Logf("Write: %v", err)
	}
	got := inbox(payloadOf("last-", 20))
	expectWriteDrops(t, dev, map[drop.Reason]uint32{drop.BadIPChecksum: 1})
	for _, g := range got {
		if bytes.Equal(g, payloadOf("head-", 20)) {
			t.Fatal("the datagram with a damaged IPv4 header reached the socket")
		}
	}
	if len(got) != 2 {
		t.Fatalf("got %d datagrams, want the 2 undamaged ones", len(got))
	}
}

// tcpConnect completes a handshake with a listener on 10.5.3.0:port over
// dev and returns the accepted connection and the next seq and ack.
func tcpConnect(t *testing.T, dev *Device, port uint16) (net.Conn, uint32, uint32) {
	t.Helper()
	ln, err := net.Listen("tcp4", net.JoinHostPort("10.5.3.0", strconv.Itoa(int(port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	if _, err := dev.Write(headroomed(craftTCP(t, port, 1000, 0, true, false, nil, false)), headroom); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := readBufs(dev.BatchSize())
	sa := readSynAck(t, dev, bufs, sizes)
	seq, ack := uint32(1001), sa.Seq+1
	if _, err := dev.Write(headroomed(craftTCP(t, port, seq, ack, false, false, nil, false)), headroom); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		return c, seq, ack
	case <-time.After(10 * time.Second):
		t.Fatal("handshake not completed")
	}
	return nil, 0, 0
}

// TestWriteDropsCorruptTCP: TCP segments whose payload was damaged after the
// checksum was computed are dropped, alone and inside a coalesced run (with
// bare pseudo-header sums in it), so
// the application reads only the correct bytes (the sender's retransmission
// fills the gap).
func TestWriteDropsCorruptTCP(t *testing.T) {
	dev, _ := batchedT(t, "t")
	const port = 5102
	conn, seq, ack := tcpConnect(t, dev, port)
	const mss = 500
	seg := func(i int, c byte) []byte { return bytes.Repeat([]byte{c}, mss) }
	var want []byte
	for i := 0; i < 6; i++ {
		want = append(want, seg(i, byte('a'+i))...)
	}
	at := func(i int) uint32 { return seq + uint32(i*mss) }

	// 1. Segment 0 alone: first damaged, then correct. (A damaged segment
	//    with the bare pseudo-header sum cannot be told apart: its sender
	//    left the checksum to the receiver.)
	w := func(pkts ...[]byte) {
		t.Helper()
		if _, err := dev.Write(headroomed(pkts...), headroom); err != nil {
			t.Logf("Write: %v", err)
		}
	}
	w(corrupt(craftTCP(t, port, at(0), ack, false, false, seg(0, 'X'), false)))
	w(craftTCP(t, port, at(0), ack, false, false, seg(0, 'a'), false))
	// 2. A run of four (1..4), the third damaged: 1 and 2 go in, 3 is
	//    dropped, 4 waits out of order.
	w(craftTCP(t, port, at(1), ack, false, false, seg(1, 'b'), false),
		craftTCP(t, port, at(2), ack, false, false, seg(2, 'c'), true),
		corrupt(craftTCP(t, port, at(3), ack, false, false, seg(3, 'd'), false)),
		craftTCP(t, port, at(4), ack, false, false, seg(4, 'e'), false))
	// 3. The "retransmission" of 3, and 5 with PSH.
	w(craftTCP(t, port, at(3), ack, false, false, seg(3, 'd'), true),
		craftTCP(t, port, at(5), ack, false, true, seg(5, 'f'), false))

	expectWriteDrops(t, dev, map[drop.Reason]uint32{drop.BadChecksum: 2})
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the application read damaged bytes:\n got %q\nwant %q", got, want)
	}
}
