package uring

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// readPort and writePort are the UDP ports of the read and write tests.
const (
	readPort  = 9999
	writePort = 9998
)

// sender returns a socket in the namespace that sends to peerIP:readPort,
// which is routed out through the TUN.
func sender(t testing.TB, batch int) *mmsgSender {
	fd := udpSocket(t, tunIP, 0, &unix.SockaddrInet4{Addr: peerIP, Port: readPort})
	return newMmsgSender(fd, batch, payloadLen)
}

// receiver returns a socket bound to tunIP:writePort that gives up after
// 10 s, so a lost packet fails the test instead of hanging it.
func receiver(t testing.TB) int {
	fd := udpSocket(t, tunIP, writePort, nil)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// testDatagram returns the UDP payload of a frame read from the TUN if it is
// one of the test's datagrams (the kernel also sends IPv6 chatter).
func testDatagram(frame []byte) ([]byte, bool) {
	if len(frame) < vnetHdrLen+28 {
		return nil, false
	}
	ip := frame[vnetHdrLen:]
	if ip[0] != 0x45 || ip[9] != unix.IPPROTO_UDP || [4]byte(ip[16:20]) != peerIP ||
		binary.BigEndian.Uint16(ip[22:]) != readPort {
		return nil, false
	}
	return ip[28:], true
}

func makeBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// TestReadBatches sends rounds of 64-byte packets from a socket through the
// TUN and reads them with ReadConn through a ring smaller than the batch.
func TestReadBatches(t *testing.T) {
	inThrowawayNetns(t)
	tt := newTUN(t)
	rc := tt.rawConn(t)
	r := newRing(t, 16) // 64 buffers take four enters
	s := sender(t, 100)
	bufs, sizes := makeBufs(64, 2048)

	const rounds = 5
	next, multi := uint32(0), 0
	for round := 0; round < rounds; round++ {
		for i, b := range s.bufs {
			fillPayload(b, uint32(round*len(s.bufs)+i))
		}
		if sent, err := s.send(len(s.bufs)); sent != len(s.bufs) || err != nil {
			t.Fatalf("sendmmsg: %d, %v", sent, err)
		}
		want := uint32((round + 1) * len(s.bufs))
		for next < want {
			n, err := r.ReadConn(rc, bufs, sizes)
			if err != nil {
				t.Fatalf("ReadConn after %d packets: %v", next, err)
			}
			got := 0
			for i := range bufs {
				if sizes[i] == 0 {
					continue
				}
				got++
				p, ok := testDatagram(bufs[i][:sizes[i]])
				if !ok {
					continue
				}
				seq, err := checkPayload(p)
				if err != nil {
					t.Fatal(err)
				}
				if seq != next {
					t.Fatalf("read packet %d, want %d (lost or reordered)", seq, next)
				}
				next++
			}
			if got != n {
				t.Fatalf("ReadConn returned %d but filled %d buffers", n, got)
			}
			if n > 1 {
				multi++
			}
		}
	}
	if multi == 0 {
		t.Error("every ReadConn returned a single packet: no batching")
	}
	// Drained: a plain Read says EAGAIN at once.
	if n, err := r.Read(tt.fd, bufs, sizes); err != unix.EAGAIN {
		// Stray IPv6 chatter may still come; it must not be a test packet.
		for i := range bufs {
			if _, ok := testDatagram(bufs[i][:sizes[i]]); ok {
				t.Errorf("Read after draining: %d, %v: a test packet came twice", n, err)
			}
		}
	}
}

// TestReadConnWaitsAndCloses: ReadConn parks in the netpoller on an empty
// TUN, wakes for a packet, and returns when the TUN is closed; Close of the
// ring from another goroutine during the wait takes effect afterwards.
func TestReadConnWaitsAndCloses(t *testing.T) {
	inThrowawayNetns(t)
	tt := newTUN(t)
	rc := tt.rawConn(t)
	r, err := New(8)
	if err != nil {
		t.Fatal(err)
	}
	s := sender(t, 1)
	fillPayload(s.bufs[0], 7)

	type result struct {
		n   int
		err error
	}
	done := make(chan result)
	bufs, sizes := makeBufs(8, 2048)
	read := func() {
		for {
			n, err := r.ReadConn(rc, bufs, sizes)
			for i := range bufs {
				if p, ok := testDatagram(bufs[i][:sizes[i]]); ok || err != nil {
					if ok {
						if seq, err := checkPayload(p); seq != 7 || err != nil {
							t.Errorf("woke with packet %d, %v; want 7", seq, err)
						}
					}
					done <- result{n, err}
					return
				}
			}
		}
	}
	go read()
	if _, err := s.send(1); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err != nil || res.n < 1 {
		t.Fatalf("ReadConn woken by a packet: %d, %v", res.n, res.err)
	}

	go read()
	if err := r.Close(); err != nil {
		t.Fatalf("Close during ReadConn: %v", err)
	}
	tt.f.Close()
	res := <-done
	// The poller's error for a file closed under a waiting RawConn.Read is
	// "use of closed file", which is not os.ErrClosed (os.File maps it for
	// its own methods only): any error with nothing read is the contract.
	if res.err == nil || res.n != 0 {
		t.Errorf("ReadConn after the TUN and the ring closed: %d, %v; want 0 and an error", res.n, res.err)
	}
	if _, err := unix.FcntlInt(uintptr(r.fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("ring fd still open after Close and the call's end (fcntl: %v)", err)
	}
	if _, err := r.Read(tt.fd, bufs, sizes); err != ErrClosed {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
}

// recvAll reads n datagrams from fd and checks that they carry the sequence
// numbers first..first+n-1 in order.
func recvAll(t *testing.T, fd int, first uint32, n int) {
	t.Helper()
	buf := make([]byte, 2048)
	for i := 0; i < n; i++ {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("socket got %d of %d packets written to the TUN: %v", i, n, err)
		}
		seq, err := checkPayload(buf[:m])
		if err != nil {
			t.Fatal(err)
		}
		if seq != first+uint32(i) {
			t.Fatalf("socket got packet %d, want %d", seq, first+uint32(i))
		}
	}
}

func TestWriteToSocket(t *testing.T) {
	inThrowawayNetns(t)
	tt := newTUN(t)
	rx := receiver(t)
	r := newRing(t, 16)

	frames := make([][]byte, 64)
	payload := make([]byte, payloadLen)
	for i := range frames {
		frames[i] = make([]byte, 2048)
		fillPayload(payload, uint32(i))
		frames[i] = frames[i][:udpFrame(frames[i], peerIP, tunIP, 5555, writePort, payload)]
	}
	res := make([]int, len(frames))
	if n, err := r.Write(tt.fd, frames, res); n != len(frames) || err != nil {
		t.Fatalf("Write: %d, %v; want %d, nil", n, err, len(frames))
	}
	for i, got := range res {
		if got != len(frames[i]) {
			t.Errorf("res[%d] = %d, want %d", i, got, len(frames[i]))
		}
	}
	recvAll(t, rx, 0, len(frames))

	// A frame shorter than the virtio header is refused; the rest go.
	bad := append([][]byte{}, frames[:8]...)
	bad[3] = []byte{0, 0, 0, 0, 0}
	n, err := r.Write(tt.fd, bad, res)
	if n != 7 || err != unix.EINVAL || res[3] != -int(unix.EINVAL) {
		t.Fatalf("Write with a bad frame at 3: %d, %v, res[3] %d; want 7, EINVAL, -EINVAL", n, err, res[3])
	}
	recvAll(t, rx, 0, 3)
	recvAll(t, rx, 4, 4)
}

// TestWritevToSocket writes packets as four iovecs each: virtio header, IP
// and UDP headers, and the payload in two pieces.
func TestWritevToSocket(t *testing.T) {
	inThrowawayNetns(t)
	tt := newTUN(t)
	rx := receiver(t)
	r := newRing(t, 16)

	vnet := make([]byte, vnetHdrLen)
	pkts := make([][]unix.Iovec, 40)
	for i := range pkts {
		hdr, payload := make([]byte, 28), make([]byte, payloadLen)
		ipUDPHeader(hdr, peerIP, tunIP, 5555, writePort, payloadLen)
		fillPayload(payload, uint32(i))
		pkts[i] = []unix.Iovec{iovec(vnet), iovec(hdr), iovec(payload[:10]), iovec(payload[10:])}
	}
	res := make([]int, len(pkts))
	if n, err := r.Writev(tt.fd, pkts, res); n != len(pkts) || err != nil {
		t.Fatalf("Writev: %d, %v; want %d, nil", n, err, len(pkts))
	}
	for i, got := range res {
		if got != vnetHdrLen+pktLen {
			t.Errorf("res[%d] = %d, want %d", i, got, vnetHdrLen+pktLen)
		}
	}
	recvAll(t, rx, 0, len(pkts))
}

func iovec(b []byte) unix.Iovec {
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return v
}

// TestZeroAllocs: a batch costs no allocation in any of the calls.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	inThrowawayNetns(t)
	tt := newTUN(t)
	rc := tt.rawConn(t)
	receiver(t) // written packets end in its queue (then are dropped): no ICMP
	r := newRing(t, 64)
	s := sender(t, 64)

	bufs, sizes := makeBufs(64, 2048)
	if a := testing.AllocsPerRun(50, func() {
		s.send(64)
		if _, err := r.ReadConn(rc, bufs, sizes); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("ReadConn: %.1f allocations per batch, want 0", a)
	}
	for {
		if _, err := r.Read(tt.fd, bufs, sizes); err == unix.EAGAIN {
			break
		}
	}
	if a := testing.AllocsPerRun(50, func() { r.Read(tt.fd, bufs, sizes) }); a != 0 {
		t.Errorf("Read of an empty TUN (EAGAIN): %.1f allocations, want 0", a)
	}

	frames := make([][]byte, 64)
	iovs := make([][]unix.Iovec, 64)
	for i := range frames {
		frames[i] = make([]byte, vnetHdrLen+pktLen)
		udpFrame(frames[i], peerIP, tunIP, 5555, writePort, make([]byte, payloadLen))
		iovs[i] = []unix.Iovec{iovec(frames[i][:vnetHdrLen+28]), iovec(frames[i][vnetHdrLen+28:])}
	}
	res := make([]int, 64)
	if a := testing.AllocsPerRun(50, func() {
		if _, err := r.Write(tt.fd, frames, res); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Write: %.1f allocations per batch, want 0", a)
	}
	if a := testing.AllocsPerRun(50, func() {
		if _, err := r.Writev(tt.fd, iovs, nil); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Writev: %.1f allocations per batch, want 0", a)
	}
	// The error path too: a refused packet's errno boxes without allocating.
	frames[5] = frames[5][:3]
	if a := testing.AllocsPerRun(50, func() { r.Write(tt.fd, frames, res) }); a != 0 {
		t.Errorf("Write with a refused packet: %.1f allocations per batch, want 0", a)
	}
}
