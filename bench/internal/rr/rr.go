// Package rr is a TCP request/response test like netperf's TCP_RR: each
// connection writes a message, waits until the whole message has come back,
// and repeats, so the rate is bounded by the round trip, not by bandwidth.
//
// Both ends use blocking syscalls on locked OS threads (one per connection),
// as netperf does, rather than Go's netpoller: a parked goroutine's wake-up
// would add the Go runtime's latency to every path measured alike and hide
// the differences between them. For the same reason Run gives every thread
// a P of its own while it runs (see Run).
//
// Sockets stay in the network namespace they were made in, so Listen and
// Dial are called inside the namespace (netns.Host.Do) and the rest may run
// anywhere.
package rr

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxSize is the largest message Run sends.
const MaxSize = 64 << 10

// Server echoes whatever each connection sends, on one locked thread per
// connection.
type Server struct {
	fd    int
	mu    sync.Mutex
	conns map[int]bool
	done  bool
	wg    sync.WaitGroup
}

// Listen opens a listening TCP socket on addr (an unspecified address for
// all) in the calling thread's namespace and starts accepting.
func Listen(addr netip.AddrPort) (*Server, error) {
	fd, err := socket(addr.Addr())
	if err != nil {
		return nil, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("rr: SO_REUSEADDR: %w", err)
	}
	if err := syscall.Bind(fd, sockaddr(addr)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("rr: bind %s: %w", addr, err)
	}
	if err := syscall.Listen(fd, 128); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("rr: listen %s: %w", addr, err)
	}
	s := &Server{fd: fd, conns: map[int]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *Server) accept() {
	defer s.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		nfd, _, err := syscall.Accept(s.fd)
		if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ECONNABORTED) {
			continue
		}
		if err != nil {
			return // Close shut the socket down
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			syscall.Close(nfd)
			return
		}
		s.conns[nfd] = true
		s.wg.Add(1)
		s.mu.Unlock()
		syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		go s.echo(nfd)
	}
}

// echo writes back what it reads until the peer closes or Close shuts the
// connection down.
func (s *Server) echo(fd int) {
	defer s.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, MaxSize)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || n <= 0 || writeFull(fd, buf[:n]) != nil {
			break
		}
	}
	s.mu.Lock()
	delete(s.conns, fd)
	s.mu.Unlock()
	syscall.Close(fd)
}

// Addr is the address the server listens on (its port, when Listen was
// given port 0).
func (s *Server) Addr() (netip.AddrPort, error) {
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rr: getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("rr: getsockname: unexpected %T", sa)
}

// Close stops accepting, ends every connection and waits for their threads.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	// shutdown, not close, wakes a thread blocked in accept or read.
	syscall.Shutdown(s.fd, syscall.SHUT_RDWR)
	for fd := range s.conns {
		syscall.Shutdown(fd, syscall.SHUT_RDWR)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return syscall.Close(s.fd)
}

// Client is a set of connections to one server.
type Client struct {
	fds []int
}

// Dial opens n connections to addr from the calling thread's namespace. A
// read that waits longer than timeout fails the run (a broken path must
// not hang it).
func Dial(addr netip.AddrPort, n int, timeout time.Duration) (*Client, error) {
	if n < 1 || n > 1024 {
		return nil, fmt.Errorf("rr: connections %d: must be between 1 and 1024", n)
	}
	c := &Client{}
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	for range n {
		fd, err := socket(addr.Addr())
		if err == nil {
			err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
		}
		if err == nil {
			err = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
		}
		if err == nil {
			err = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}
		if err == nil {
			if err = connect(fd, sockaddr(addr), timeout); err != nil {
				err = fmt.Errorf("rr: connect %s: %w", addr, err)
			}
		}
		if err != nil {
			if fd >= 0 {
				syscall.Close(fd)
			}
			c.Close()
			return nil, err
		}
		c.fds = append(c.fds, fd)
	}
	return c, nil
}

// Close closes every connection.
func (c *Client) Close() {
	for _, fd := range c.fds {
		syscall.Close(fd)
	}
	c.fds = nil
}

// Result is one Run: transactions over all connections and the latency of
// each transaction (write until the whole echo has been read).
type Result struct {
	Transactions int
	Seconds      float64
	TPS          float64 // transactions per second, all connections together
	P50us, P99us float64 // per-transaction latency percentiles, µs
}

// Run sends size-byte messages on every connection, one at a time per
// connection, for d, and returns the totals. Any error (a timeout, a reset)
// fails the run.
//
// For the run it raises GOMAXPROCS to two per connection if it is lower
// (a P for each connection's thread and for the server's thread for it,
// when the Server is in this process) and puts it back after. A thread
// back from a blocking syscall needs a P: with GOMAXPROCS at the CPU count
// (2 here), 16 connections' threads queued for two Ps, so that only about
// two transactions were in flight and the tail held the queueing (a lab
// run, client and server as separate processes, 16 connections through
// felt: p99 3.2–3.5 ms with GOMAXPROCS 2, 0.83 ms with 64). One connection
// needs no more than the two Ps it has.
func (c *Client) Run(size int, d time.Duration) (Result, error) {
	if size < 1 || size > MaxSize {
		return Result{}, fmt.Errorf("rr: message size %d: must be between 1 and %d", size, MaxSize)
	}
	if prev := runtime.GOMAXPROCS(0); prev < 2*len(c.fds) {
		runtime.GOMAXPROCS(2 * len(c.fds))
		defer runtime.GOMAXPROCS(prev)
	}
	lat := make([][]time.Duration, len(c.fds))
	errs := make([]error, len(c.fds))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, fd := range c.fds {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			lat[i], errs[i] = transact(fd, size, deadline)
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return Result{}, fmt.Errorf("rr: no transaction completed in %v", d)
	}
	slices.Sort(all)
	return Result{
		Transactions: len(all), Seconds: secs, TPS: float64(len(all)) / secs,
		P50us: us(Percentile(all, 50)), P99us: us(Percentile(all, 99)),
	}, nil
}

// transact runs request/response on fd until deadline and returns every
// transaction's latency.
func transact(fd, size int, deadline time.Time) ([]time.Duration, error) {
	req := make([]byte, size)
	for i := range req {
		req[i] = byte(i)
	}
	resp := make([]byte, size)
	lat := make([]time.Duration, 0, 1<<14)
	for {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return lat, nil
		}
		if err := writeFull(fd, req); err != nil {
			return lat, fmt.Errorf("rr: write: %w", err)
		}
		if err := readFull(fd, resp); err != nil {
			return lat, fmt.Errorf("rr: read: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
}

// Percentile is the nearest-rank p-th percentile of sorted xs.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// connect is connect(2) on a blocking socket whose timeouts are set. The
// kernel does not restart such a connect after a signal handler ran (Go's
// runtime sends SIGURG to preempt threads), and returns EINTR while the
// handshake goes on; connect then waits, up to timeout, for the socket to
// become writable and returns the handshake's result.
func connect(fd int, sa syscall.Sockaddr, timeout time.Duration) error {
	err := syscall.Connect(fd, sa)
	if !errors.Is(err, syscall.EINTR) {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms <= 0 {
			return fmt.Errorf("interrupted, then not connected within %v: %w", timeout, syscall.ETIMEDOUT)
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, ms)
		if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return err
		}
		soerr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			return err
		}
		if soerr != 0 {
			return syscall.Errno(soerr)
		}
		return nil
	}
}

func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Read(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return fmt.Errorf("no response within the timeout (SO_RCVTIMEO): %w", err)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("connection closed by the server")
		}
		b = b[n:]
	}
	return nil
}

func socket(a netip.Addr) (int, error) {
	family := syscall.AF_INET
	if a.Is6() && !a.Is4In6() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("rr: socket: %w", err)
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) syscall.Sockaddr {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}
