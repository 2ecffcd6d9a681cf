package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/tun/internal/uring"
)

// TestIOPathChosenAndLogged: each path is taken when asked for, reported by
// IOPath and logged once at creation.
func TestIOPathChosenAndLogged(t *testing.T) {
	forEachPath(t, func(t *testing.T, opts Options) {
		inThrowawayNetns(t)
		core, logs := observer.New(zap.InfoLevel)
		opts.Logger = zap.New(core)
		dev, _ := configuredWith(t, "p", opts)
		entries := logs.FilterMessageSnippet("TUN I/O path").All()
		if len(entries) != 1 {
			t.Fatalf("%d log lines about the I/O path, want 1: %v", len(entries), logs.All())
		}
		if opts.IOUring {
			if got := entries[0].ContextMap()["path"]; got != IOPathUring {
				t.Errorf("logged path %v, want %s", got, IOPathUring)
			}
		} else if !strings.Contains(dev.IOPath(), "off by option") {
			t.Errorf("IOPath %q does not say io_uring was switched off", dev.IOPath())
		}
	})
}

// setIOUringDisabled sets kernel.io_uring_disabled to v and returns a
// function that restores it; t.Cleanup restores it too, also when the test
// fails. The setting is machine-wide: keep the window short.
func setIOUringDisabled(t *testing.T, v string) (restore func()) {
	t.Helper()
	const path = "/proc/sys/kernel/io_uring_disabled"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Errorf("restore %s to %s: %v", path, strings.TrimSpace(string(old)), err)
			}
		})
	}
	t.Cleanup(restore)
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		t.Fatalf("set %s to %s: %v", path, v, err)
	}
	return restore
}

// TestFallbackWhenIOUringDisabled: with kernel.io_uring_disabled=2 at
// creation, a device that asks for io_uring falls back to read/writev, says
// why, and reads and writes correctly.
func TestFallbackWhenIOUringDisabled(t *testing.T) {
	t.Setenv(uring.EnvSwitch, "") // the sysctl, not the environment, must be the reason
	inThrowawayNetns(t)
	restore := setIOUringDisabled(t, "2")
	core, logs := observer.New(zap.InfoLevel)
	name := devName("d")
	dev, err := CreateWith(name, 1420, Options{IOUring: true, IOUringReads: true, Logger: zap.New(core)})
	restore()
	if err != nil {
		t.Fatalf("CreateWith with io_uring disabled: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	if p := dev.IOPath(); !strings.HasPrefix(p, IOPathSyscalls+" (") || !strings.Contains(p, "io_uring_disabled") {
		t.Errorf("IOPath %q: want %s with the reason (kernel.io_uring_disabled)", p, IOPathSyscalls)
	}
	if logs.FilterMessageSnippet("io_uring unavailable").Len() != 1 {
		t.Errorf("the fallback was not logged once: %v", logs.All())
	}
	if _, err := Configure(name, NetConfig{Addr: mustPrefix("10.5.3.0/32"), Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	dev.file.SetReadDeadline(time.Now().Add(10 * time.Second))
	exchange(t, dev)
}

// exchange writes a batch of 20 datagrams (10 of one flow, which coalesce,
// and 10 of distinct flows) into dev and checks that a socket gets them,
// then sends 20 datagrams from a socket and checks that Read returns them
// in order.
func exchange(t *testing.T, dev *Device) {
	t.Helper()
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0), Port: 4002})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	var pkts [][]byte
	for i := 0; i < 20; i++ {
		p := craftUDP(t, 4002, uint16(i), []byte(fmt.Sprintf("to the socket %02d", i)), csumFull)
		if i >= 10 {
			setUDPSrcPort(p, uint16(20000+i))
		}
		pkts = append(pkts, p)
	}
	bufs := headroomed(pkts...)
	for i := range bufs {
		bufs[i] = append(bufs[i], make([]byte, 64)...)[:len(bufs[i])]
	}
	if n, err := dev.Write(bufs, headroom); n != len(bufs) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(bufs))
	}
	got := make([]byte, 2048)
	for i := 0; i < 20; i++ {
		m, err := sock.Read(got)
		if err != nil {
			t.Fatalf("socket got %d of 20 datagrams: %v", i, err)
		}
		if want := fmt.Sprintf("to the socket %02d", i); string(got[:m]) != want {
			t.Fatalf("datagram %d: %q, want %q", i, got[:m], want)
		}
	}

	conn := dialUDP(t, "10.5.9.9:4003")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(conn, "from the socket %02d", i)
	}
	rb, sizes := readBufs(dev.BatchSize())
	seen := 0
	for calls := 0; seen < 20 && calls < 50; calls++ {
		n, err := dev.Read(rb, sizes, headroom)
		if err != nil {
			t.Fatalf("Read after %d datagrams: %v", seen, err)
		}
		for i := 0; i < n; i++ {
			p := gopacket.NewPacket(rb[i][headroom:headroom+sizes[i]], layers.LayerTypeIPv4, gopacket.Default)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if udp == nil || udp.DstPort != 4003 {
				continue
			}
			if want := fmt.Sprintf("from the socket %02d", seen); string(udp.Payload) != want {
				t.Fatalf("Read: %q, want %q", udp.Payload, want)
			}
			seen++
		}
	}
	if seen != 20 {
		t.Fatalf("Read returned %d of 20 datagrams", seen)
	}
}

// TestExchangeOnEachPath: the same exchange on both paths.
func TestExchangeOnEachPath(t *testing.T) {
	forEachPath(t, func(t *testing.T, opts Options) {
		inThrowawayNetns(t)
		dev, _ := configuredWith(t, "e", opts)
		exchange(t, dev)
	})
}

// TestNoAllocsPerBatch: a Read of a batch of queued datagrams and a Write of
// a batch (one coalesced run, lone packets) allocate nothing, on each path.
func TestNoAllocsPerBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	forEachPath(t, func(t *testing.T, opts Options) {
		inThrowawayNetns(t)
		dev, _ := configuredWith(t, "n", opts)
		port := sink(t)
		wb := udpBatch(t, 64, port, 100)
		for i := 32; i < len(wb); i++ {
			setUDPSrcPort(wb[i][headroom:], uint16(30000+i))
		}
		if a := testing.AllocsPerRun(50, func() {
			if _, err := dev.Write(wb, headroom); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("Write of %d packets: %.1f allocations per call, want 0", len(wb), a)
		}

		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{10, 5, 9, 9}, Port: 4004}); err != nil {
			t.Fatal(err)
		}
		send := mmsg(fd, 32, 40)
		rb, sizes := readBufs(dev.BatchSize())
		if a := testing.AllocsPerRun(50, func() {
			send()
			for got := 0; got < 32; {
				n, err := dev.Read(rb, sizes, headroom)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if sizes[i] == 68 { // ours, not the kernel's own packets
						got++
					}
				}
			}
		}); a != 0 {
			t.Errorf("Read of a batch: %.1f allocations per batch, want 0", a)
		}
	})
}

// mmsg returns a function that sends n datagrams of size bytes on the
// connected socket fd with one sendmmsg, allocating nothing.
func mmsg(fd, n, size int) func() {
	buf := make([]byte, size)
	iovs := make([]unix.Iovec, n)
	msgs := make([]unix.Mmsghdr, n)
	for i := range msgs {
		iovs[i].Base = &buf[0]
		iovs[i].SetLen(size)
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	return func() {
		sent := 0
		for sent < n {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[sent])), uintptr(n-sent), 0, 0, 0)
			if e != 0 && e != unix.EINTR {
				panic(e)
			}
			sent += int(r)
		}
	}
}

// TestCloseWakesReadOnEachPath: Close ends a Read blocked on an idle TUN,
// returns nil when called again, and Read and Write fail after it, on both
// paths.
func TestCloseWakesReadOnEachPath(t *testing.T) {
	forEachPath(t, func(t *testing.T, opts Options) {
		inThrowawayNetns(t)
		dev, err := CreateWith(devName("q"), 0, opts) // down: the kernel sends nothing into it
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		if opts.IOUring && dev.IOPath() != IOPathUring {
			t.Skipf("io_uring unavailable: %s", dev.IOPath())
		}
		bufs, sizes := readBufs(dev.BatchSize())
		done := make(chan error, 1)
		go func() {
			_, err := dev.Read(bufs, sizes, headroom)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond) // usually lets Read block first; the test holds either way
		if err := dev.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("blocked Read returned %v, want os.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not wake the blocked Read")
		}
		if err := dev.Close(); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
		if _, err := dev.Write(udpBatch(t, 1, 9, 10), headroom); err == nil {
			t.Error("Write after Close succeeded")
		}
		if _, err := dev.Read(bufs, sizes, headroom); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read after Close: %v, want os.ErrClosed", err)
		}
	})
}

// putVirtioHdr writes h as the kernel lays it out.
func putVirtioHdr(b []byte, h virtioHdr) {
	b[0], b[1] = h.flags, h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

// TestBatchSetsAsideFramesAfterSuperPacket: in a READ batch of [datagram A,
// empty READ, super-packet of 10 segments, datagram B, datagram C], A moves
// over nothing, the super-packet's segments follow A in order, and B and C,
// whose buffers the segments need, come out of the next Read, before
// anything newer.
func TestBatchSetsAsideFramesAfterSuperPacket(t *testing.T) {
	r := &reader{hdr: make([]byte, 256)}
	bufs, sizes := readBufs(Batch)
	base := headroom - VirtioHdrLen
	frame := func(j int, pkt []byte, h virtioHdr) {
		putVirtioHdr(bufs[j][base:], h)
		r.fsizes[j] = VirtioHdrLen + copy(bufs[j][headroom:], pkt)
	}
	r.fsizes = make([]int, 5)
	frame(0, craftUDP(t, 7000, 1, []byte("A"), csumFull), virtioHdr{})
	payload := make([]byte, 10*1000)
	for i := range payload {
		payload[i] = byte(i / 1000)
	}
	super, h := superPacket(t, false, true, payload, 1000)
	frame(2, super, h)
	frame(3, craftUDP(t, 7000, 2, []byte("B"), csumFull), virtioHdr{})
	frame(4, craftUDP(t, 7000, 3, []byte("C"), csumFull), virtioHdr{})

	n, gso, stop := r.batch(bufs, sizes, 5, headroom)
	if n != 11 || !gso || !stop {
		t.Fatalf("batch = %d, gso %t, stop %t; want 11 packets, a super-packet, stop", n, gso, stop)
	}
	udpPayload := func(i int) string {
		p := gopacket.NewPacket(bufs[i][headroom:headroom+sizes[i]], layers.LayerTypeIPv4, gopacket.Default)
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			return string(u.Payload)
		}
		return ""
	}
	if got := udpPayload(0); got != "A" {
		t.Errorf("packet 0: %q, want A", got)
	}
	for i := 1; i <= 10; i++ {
		p := gopacket.NewPacket(bufs[i][headroom:headroom+sizes[i]], layers.LayerTypeIPv4, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || len(tcp.Payload) != 1000 || tcp.Payload[0] != byte(i-1) || tcp.Seq != 0xfffff000+uint32(1000*(i-1)) {
			t.Fatalf("packet %d: want segment %d of the super-packet", i, i-1)
		}
	}
	if !r.stash.pending() {
		t.Fatal("B and C were not set aside")
	}
	if got := r.unstash(bufs, sizes, headroom); got != 2 || udpPayload(0) != "B" || udpPayload(1) != "C" {
		t.Fatalf("unstash = %d (%q, %q), want B and C", got, udpPayload(0), udpPayload(1))
	}
	if r.stash.pending() {
		t.Error("stash not empty after handing everything out")
	}
}
