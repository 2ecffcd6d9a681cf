package router

import (
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/internal/envus"
)

// Lingering after a TUN write (Config.Linger). A request that the inbound
// loop writes into the TUN wakes its server, whose reply comes back through
// the TUN some tens of µs later. If the loop parks meanwhile its vCPU may
// halt, and the reply then has to wake it: on a VM a dear step (an exit to
// the hypervisor and back), and a park and a wake-up, each a context switch,
// per host and round trip that the kernel's own path does not pay. So when
// the loop finds its socket empty after a TUN write, it polls the TUN and
// the socket without sleeping for up to Linger, yielding the CPU between
// polls (a woken server queued on this CPU runs at once): once the TUN is
// readable the loop parks, and the runtime's non-blocking netpoll usually
// runs the outbound loop on this thread straight away (unless another
// thread is blocked in epoll_wait, which then takes the event; the fourth
// session's trace of the plain park, docs/performance.md "Latency").
//
// A wait the TUN does not end is a miss: after one the loop skips the next
// 1, 3, 7 or lingerSkipMax idle moments that follow a TUN write, so that
// traffic with nothing to pick up (a flood into a sink, a reply that comes
// much later) pays one short poll now and then. A reply that is in the TUN
// when the write returns (the kernel's own answer, a TCP ACK) ends the wait
// at its first poll: ready, neither a hit nor a miss.
//
// With one queue and two Ps, the outbound loop's read-moderation sleep and
// this wait can hold both Ps at once, for at most the longer of the two;
// other goroutines (etcd, HTTP, the collector) wait that long.

// LingerEnv sets the linger felt's agent uses: whole microseconds, 0 to
// 1000 (0, the default, turns lingering off).
const LingerEnv = "FELT_LINGER"

// DefaultLinger is off: lingering is a bounded busy-poll, which buys
// request/response latency with CPU (docs/performance.md, "Sixth session"),
// so it is the operator's choice.
const DefaultLinger time.Duration = 0

// MaxLinger bounds Config.Linger and LingerEnv.
const MaxLinger = time.Millisecond

const lingerSkipMax = 15

// LingerFromEnv is LingerEnv's value, or DefaultLinger if it is unset; a
// value it cannot take gives DefaultLinger and an error that names the
// variable, the value and the rule.
func LingerFromEnv() (time.Duration, error) {
	d, err := envus.Get(LingerEnv, DefaultLinger, MaxLinger)
	if err != nil {
		return d, fmt.Errorf("router: %w", err)
	}
	return d, nil
}

// idleHooker is a Conn that runs a hook when a read finds the socket empty,
// before it parks (encap.Conn.OnIdle).
type idleHooker interface {
	OnIdle(f func(fd uintptr) bool)
}

// fdController is a Device whose fd a linger may poll (tun.Device.Control).
type fdController interface {
	Control(f func(fd uintptr)) error
}

type lingerEnd uint8

const (
	lingerTimeout lingerEnd = iota // nothing came within max
	lingerAtOnce                   // the TUN was readable at the first poll
	lingerTUN                      // the TUN became readable during the wait: a hit
	lingerSocket                   // a datagram came first
	lingerError                    // ppoll failed
)

// linger is one inbound loop's; only that loop touches it (the hook runs
// inside its reads).
type linger struct {
	max   time.Duration
	dev   fdController
	stats *Stats

	wrote bool // the loop wrote to the TUN since its socket was last found empty
	miss  int  // idle moments to skip after the last miss: 0, 1, 3 … lingerSkipMax
	skip  int  // idle moments still to skip

	// wait's state, bound once: a closure per wait would allocate.
	fds  [2]unix.PollFd // the TUN, the socket
	zero unix.Timespec
	end  lingerEnd
	wait func(fd uintptr)
}

// newLinger returns the loop's linger, registered with conn, or nil when max
// is 0 or dev or conn cannot take part.
func newLinger(max time.Duration, dev Device, conn Conn, stats *Stats) *linger {
	fc, ok1 := dev.(fdController)
	ih, ok2 := conn.(idleHooker)
	if max <= 0 || !ok1 || !ok2 {
		return nil
	}
	l := &linger{max: max, dev: fc, stats: stats}
	l.wait = l.poll
	ih.OnIdle(l.idle)
	return l
}

// idle is the Conn's hook, run when its socket is empty. It returns true
// when a datagram came during the wait, for the Conn to read at once.
func (l *linger) idle(sock uintptr) bool {
	if !l.wrote {
		return false
	}
	l.wrote = false
	if l.skip > 0 {
		l.skip--
		return false
	}
	l.fds[1] = unix.PollFd{Fd: int32(sock), Events: unix.POLLIN}
	if err := l.dev.Control(l.wait); err != nil {
		return false
	}
	switch l.end {
	case lingerAtOnce:
		l.stats.lingerReady.Add(1)
		return false
	case lingerTUN:
		l.miss, l.skip = 0, 0
		l.stats.lingerHits.Add(1)
		return false
	}
	l.miss = min(2*l.miss+1, lingerSkipMax)
	l.skip = l.miss
	l.stats.lingerMisses.Add(1)
	return l.end == lingerSocket
}

// poll polls the TUN (fd) and the socket without blocking, yielding the CPU
// between polls, until one is readable or max has passed, and sets l.end.
// Raw syscalls: a normal one would wake the runtime's sysmon.
func (l *linger) poll(fd uintptr) {
	l.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	start := time.Since(clockBase)
	for first := true; ; first = false {
		n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&l.fds[0])), 2,
			uintptr(unsafe.Pointer(&l.zero)), 0, 0, 0)
		switch {
		case e == unix.EINTR:
		case e != 0:
			l.end = lingerError
			return
		case n > 0 && l.fds[0].Revents != 0 && first:
			l.end = lingerAtOnce
			return
		case n > 0 && l.fds[0].Revents != 0:
			l.end = lingerTUN
			return
		case n > 0:
			l.end = lingerSocket
			return
		}
		if time.Since(clockBase)-start >= l.max {
			l.end = lingerTimeout
			return
		}
		unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

// clockBase makes time.Since a monotonic clock reading without allocation.
var clockBase = time.Now()
