//go:build linux

package encap

// Concurrency shape: a Conn is one UDP socket driven by at most one reader
// goroutine (ReadViews or ReadBatch) and one writer goroutine (WriteBatch) at a time; the
// two own separate, preallocated scratch (reader, writer), so neither locks.
// Both call recvmmsg/sendmmsg as raw syscalls inside RawConn.Read/Write: the
// socket is non-blocking, and on EAGAIN the callback returns false so the Go
// netpoller parks the goroutine until the fd is ready. The syscall callbacks
// are built once in Listen, so a batch allocates nothing. Close may be called
// from any goroutine, any number of times; it wakes a blocked read.
//
// GSO (send): a run of consecutive packets to one address with equal sizes
// (the last may be shorter) goes out as ONE message whose iovecs point at the
// caller's payloads (no copy) and whose UDP_SEGMENT cmsg tells the kernel the
// segment size; at most 64 segments and 65507 bytes per message. Runs are
// batched with sendmmsg. A GSO message the kernel refuses is sent again as
// plain datagrams and holds back its destination alone, for runs that large,
// for 1 s doubling to 64 s (write_linux.go refused, gsohold_linux.go); GSO
// goes off for the whole Conn, logged once, only if the kernel has no
// UDP_SEGMENT or refuses a run that fits every MTU. Kernels 7.0 - 7.1.4
// (UDP GSO corruption bug) start with GSO off. IPv4 sockets ignore
// ICMP-learned path MTUs (IP_PMTUDISC_OMIT; see setSockopts), so a spoofed
// "fragmentation needed" changes nothing.
//
// Receive: recvmmsg writes every message into a Conn-owned 64 KiB buffer.
// With UDP_GRO set the kernel may hand back one "train" of equal-size
// datagrams of one flow in a single message, its segment size in a UDP_GRO
// cmsg. ReadViews hands out each datagram as a view of that buffer, back to
// back within a train, with no copy in userspace; the views hold until the
// next read. A train that does not fit the caller's views stays pending in
// the Conn and is delivered first by the next read, so nothing is lost and
// order within a flow is kept. Without GRO every message is one datagram,
// handed out the same way. ReadBatch is ReadViews plus one copy into the
// caller's buffers.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	// DefaultBatchSize is the batch size used when Options.BatchSize is 0.
	DefaultBatchSize = 128
	// DefaultSocketBuffer is the SO_RCVBUF/SO_SNDBUF size used when
	// Options.SocketBuffer is 0.
	DefaultSocketBuffer = 4 << 20
	// MaxDatagram is the largest message a read takes (a GRO train, or
	// one datagram); every buffer passed to ReadBatch needs room for
	// offset+MaxDatagram bytes.
	MaxDatagram = 65535
)

// Options tunes a Conn. Start from DefaultOptions: the zero value has GSO
// and GRO off.
type Options struct {
	BatchSize    int  // datagrams per read/WriteBatch syscall; 0 means DefaultBatchSize
	GSO          bool // UDP segmentation offload on send (DefaultOptions: on; off to measure)
	GRO          bool // UDP receive coalescing (DefaultOptions: on; off to measure)
	SocketBuffer int  // SO_RCVBUF and SO_SNDBUF in bytes, FORCE variants tried first; 0 means DefaultSocketBuffer
	ReusePort    bool // SO_REUSEPORT: Conns with it share one port, one peer's datagrams on one Conn (reuseport_linux.go)
	// Logger receives the rare events (GSO fallback, buffer limits); nil means no logging.
	Logger *zap.Logger

	// noChecksum sets SO_NO_CHECK, with which the kernel refuses UDP_SEGMENT
	// sends (EINVAL): tests use it to drive the real GSO fallback path.
	noChecksum bool
}

// DefaultOptions returns BatchSize 128, GSO and GRO on, 4 MiB socket buffers.
func DefaultOptions() Options {
	return Options{BatchSize: DefaultBatchSize, GSO: true, GRO: true, SocketBuffer: DefaultSocketBuffer}
}

// Conn is a UDP socket with batched, offloaded reads and writes.
// See the note at the top of conn_linux.go for its concurrency contract.
type Conn struct {
	pc     *net.UDPConn
	raw    syscall.RawConn
	local  netip.AddrPort
	family int  // unix.AF_INET or unix.AF_INET6
	dual   bool // an AF_INET6 socket that also carries IPv4 (ListenDualStack)
	batch  int
	log    *zap.Logger

	gso         atomic.Bool // cleared for good if the kernel would refuse every GSO message
	gro         bool
	gsoSent     atomic.Uint64 // GSO messages the kernel accepted (GSOStats)
	gsoRefusals atomic.Uint64 // GSO messages it refused
	truncated   atomic.Uint64
	closeOnce   sync.Once
	closeErr    error

	idle func(fd uintptr) bool // OnIdle's hook; nil: none

	rd reader
	wr writer
}

// OnIdle makes f run on the reading goroutine whenever a read finds the
// socket empty, once per wake-up, before the read parks in the netpoller: f
// gets the socket's fd (valid for the call) and returns true to have the
// read try the socket once more before it parks. f must not block for long
// or allocate. Call it before the first read; it is not safe to call
// concurrently with one.
func (c *Conn) OnIdle(f func(fd uintptr) bool) { c.idle = f }

// Listen opens a UDP socket on laddr: 0.0.0.0:port (any address, as a kernel
// vxlan device listens) or IP:port (as flanneld's udp backend binds). An IPv4
// laddr gives an IPv4 socket, an IPv6 one an IPv6-only socket (Go sets
// IPV6_V6ONLY): each reaches peers of its own family only.
func Listen(laddr netip.AddrPort, o Options) (*Conn, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if !laddr.Addr().IsValid() {
		return nil, fmt.Errorf("encap: listen address %s: must have an IP (0.0.0.0 for any)", laddr)
	}
	o = o.withDefaults()
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	network, family := "udp4", unix.AF_INET
	if laddr.Addr().Is6() {
		network, family = "udp6", unix.AF_INET6
	}
	pc, err := listenUDP(network, laddr, o.ReusePort)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("encap: listen on %s: udp port %d is already in use (another felt, flanneld or a kernel vxlan device?): %w", laddr, laddr.Port(), err)
		}
		return nil, fmt.Errorf("encap: listen on %s: %w", laddr, err)
	}
	c := &Conn{pc: pc, family: family, batch: o.BatchSize, log: log}
	if err := c.setup(o); err != nil {
		pc.Close()
		return nil, fmt.Errorf("encap: listen on %s: %w", laddr, err)
	}
	c.local = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	c.local = netip.AddrPortFrom(c.local.Addr().Unmap(), c.local.Port())
	c.rd.init(c)
	c.wr.init(c)
	return c, nil
}

// check reports options Listen refuses.
func (o Options) check() error {
	if o.BatchSize < 0 || o.BatchSize > 1024 {
		return fmt.Errorf("encap: options: BatchSize %d: must be between 1 and 1024 (0 for the default %d)", o.BatchSize, DefaultBatchSize)
	}
	if o.SocketBuffer < 0 {
		return fmt.Errorf("encap: options: SocketBuffer %d: must not be negative (0 for the default %d)", o.SocketBuffer, DefaultSocketBuffer)
	}
	return nil
}

// withDefaults fills the zero BatchSize and SocketBuffer.
func (o Options) withDefaults() Options {
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.SocketBuffer == 0 {
		o.SocketBuffer = DefaultSocketBuffer
	}
	return o
}

// setup sets the socket options and decides on GSO and GRO.
func (c *Conn) setup(o Options) error {
	raw, err := c.pc.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw conn: %w", err)
	}
	c.raw = raw
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = c.setSockopts(int(fd), o)
	})
	if err != nil {
		return err
	}
	return serr
}

// BatchSize is the most datagrams one ReadViews, ReadBatch or WriteBatch
// call hands over; size the caller's slices by it.
func (c *Conn) BatchSize() int { return c.batch }

// LocalAddr is the bound address (with the real port if laddr's was 0).
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Offloads reports whether GSO and GRO are in use right now. GSO turns off
// after Listen only if the kernel turns down GSO as such; a refusal about
// one destination's route holds back that destination alone.
func (c *Conn) Offloads() (gso, gro bool) { return c.gso.Load(), c.gro }

// GSOStats counts GSO messages since Listen.
type GSOStats struct {
	Sent    uint64 // accepted by the kernel
	Refused uint64 // turned down: their packets went out as plain datagrams
}

// GSOStats is safe to call from any goroutine, for metrics and tests.
func (c *Conn) GSOStats() GSOStats {
	return GSOStats{Sent: c.gsoSent.Load(), Refused: c.gsoRefusals.Load()}
}

// Truncated counts received datagrams dropped because they did not fit: a
// message the kernel truncated, or a datagram larger than ReadBatch's
// buffer.
func (c *Conn) Truncated() uint64 { return c.truncated.Load() }

// Close closes the socket and wakes a blocked ReadViews or ReadBatch (which then returns
// an error matching net.ErrClosed). It is safe to call more than once; later
// calls return what the first returned.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.pc.Close() })
	return c.closeErr
}
