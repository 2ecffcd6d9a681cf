package rr

import (
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func listen(t *testing.T) (*Server, netip.AddrPort) {
	t.Helper()
	s, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Addr()
	if err != nil || addr.Port() == 0 {
		s.Close()
		t.Fatalf("server address %v, %v", addr, err)
	}
	return s, addr
}

// Request/response over loopback: every connection completes transactions,
// whatever the message size, and the percentiles are ordered.
func TestRunLoopback(t *testing.T) {
	s, addr := listen(t)
	defer s.Close()
	procs := runtime.GOMAXPROCS(0)
	defer func() {
		if got := runtime.GOMAXPROCS(0); got != procs {
			t.Errorf("GOMAXPROCS %d after the runs, was %d", got, procs)
		}
	}()
	for _, conns := range []int{1, 4} {
		c, err := Dial(addr, conns, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 1024, MaxSize} {
			r, err := c.Run(size, 100*time.Millisecond)
			if err != nil {
				t.Fatalf("%d conns, %d bytes: %v", conns, size, err)
			}
			if r.Transactions < conns || r.TPS <= 0 || r.P50us <= 0 || r.P99us < r.P50us || r.Seconds <= 0 {
				t.Errorf("%d conns, %d bytes: %+v", conns, size, r)
			}
		}
		c.Close()
	}
}

// Close ends a server with connections still open (its threads blocked in
// read) and the client's next run fails instead of hanging.
func TestServerCloseWithOpenConnections(t *testing.T) {
	s, addr := listen(t)
	c, err := Dial(addr, 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(1, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with connections open")
	}
	if _, err := c.Run(1, time.Second); err == nil {
		t.Error("a run against a closed server succeeded")
	}
}

func TestBadArguments(t *testing.T) {
	s, addr := listen(t)
	defer s.Close()
	if _, err := Dial(addr, 0, time.Second); err == nil || !strings.Contains(err.Error(), "connections 0: must be between 1 and 1024") {
		t.Errorf("Dial 0 connections: %v", err)
	}
	c, err := Dial(addr, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{0, MaxSize + 1} {
		if _, err := c.Run(size, time.Millisecond); err == nil || !strings.Contains(err.Error(), "message size") {
			t.Errorf("Run(%d): %v", size, err)
		}
	}
	// Nothing listens on port 1 of loopback.
	if _, err := Dial(netip.MustParseAddrPort("127.0.0.1:1"), 1, time.Second); err == nil || !strings.Contains(err.Error(), "connect 127.0.0.1:1") {
		t.Errorf("Dial to a closed port: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	xs := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]time.Duration{50: 5, 99: 10, 10: 1, 100: 10} {
		if got := Percentile(xs, p); got != want {
			t.Errorf("p%g = %d, want %d", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

// A connect that a signal interrupts (Go preempts threads with SIGURG) on a
// socket with timeouts set returns EINTR while the handshake goes on;
// connect waits for it instead of failing. The handshake is held up by a
// full accept queue (backlog 0, one connection waiting): the listener drops
// the SYN until that connection is accepted.
func TestConnectInterrupted(t *testing.T) {
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(lfd)
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	lsa, err := syscall.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	first, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(first)
	if err := syscall.Connect(first, lsa); err != nil { // fills the accept queue
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	tid := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- syscall.Gettid()
		done <- connect(fd, lsa, 5*time.Second)
	}()
	id := <-tid
	time.Sleep(200 * time.Millisecond) // the connect is waiting for its SYN's answer
	if err := syscall.Tgkill(os.Getpid(), id, syscall.SIGURG); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	nfd, _, err := syscall.Accept(lfd) // room for the retransmitted SYN
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(nfd)
	if err := <-done; err != nil {
		t.Fatalf("connect after a signal: %v", err)
	}
}
