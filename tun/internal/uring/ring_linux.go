package uring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnavailable says this process cannot use io_uring here: the kernel has
// none or too old a one, kernel.io_uring_disabled forbids it, a seccomp
// filter blocks it, or FELT_IO_URING=off. The error New returns wraps it
// (and the errno, where there is one); callers fall back to read(2) and
// writev(2) on errors.Is(err, ErrUnavailable).
var ErrUnavailable = errors.New("uring: io_uring is unavailable")

// ErrBroken is wrapped by the error of every call after an io_uring_enter
// failed in a way that may have left SQEs in the queue: the Ring must not be
// used again (close it; the caller falls back to read(2) and writev(2)).
var ErrBroken = errors.New("uring: ring unusable after a failed io_uring_enter")

// ErrClosed is returned by a Ring used after Close.
var ErrClosed = errors.New("uring: ring is closed")

// EnvSwitch names the environment variable that, set to "off", makes New
// return ErrUnavailable without trying: the operator's way to force the
// fallback, and the tests' way to exercise it.
const EnvSwitch = "FELT_IO_URING"

// MaxEntries bounds New's entries.
const MaxEntries = 4096

// Ring is one io_uring instance: a submission queue of Entries() slots and a
// completion queue twice that size, both mapped once by New.
//
// Concurrency: a Ring belongs to one goroutine at a time. Its methods are
// not safe for concurrent use; two goroutines inside one Ring at once make
// it panic rather than corrupt the queues. A TUN that is read by one
// goroutine and written by another needs two Rings. Close is the exception:
// any goroutine may call it at any time; if the owner is inside a call, the
// ring is released when that call returns (close the TUN first, so that a
// ReadConn waiting for packets returns).
//
// Every method submits its batch and reaps every completion of it before it
// returns, so nothing is in flight between calls: buffers the kernel held
// from submission to completion are the caller's again on return.
type Ring struct {
	fd      int
	rings   []byte // SQ and CQ rings (one mapping, IORING_FEAT_SINGLE_MMAP)
	sqeMem  []byte
	sqHead  *uint32 // written by the kernel
	sqTail  *uint32 // written by us
	sqMask  uint32
	entries uint32
	sqes    []sqe
	tail    uint32  // our copy of *sqTail
	cqHead  *uint32 // written by us
	cqTail  *uint32 // written by the kernel
	cqMask  uint32
	cqes    []cqe
	res     []int32 // completion results of the current chunk by user_data

	state  atomic.Int32 // idle, busy, closing or closed
	broken error        // a failed io_uring_enter may have left SQEs behind
	window int          // how many READs Read submits first: see Read

	// ReadConn's RawConn callback and its arguments, bound once so that a
	// call allocates nothing.
	readFn func(uintptr) bool
	rBufs  [][]byte
	rSizes []int
	rN     int
	rErr   error
}

// New sets up a ring with room for entries submissions per io_uring_enter
// (rounded up to a power of two by the kernel; see Entries). Batches larger
// than that are carried in several enters.
//
// It needs Linux 5.6 or later (IORING_OP_READ/WRITE, IORING_REGISTER_PROBE,
// IORING_FEAT_SINGLE_MMAP); it uses IORING_SETUP_SUBMIT_ALL and
// COOP_TASKRUN where the kernel has them (5.18, 5.19) and works without.
// When io_uring cannot be used the error wraps ErrUnavailable; any other
// error is a bad argument or a resource limit (EMFILE, ENOMEM).
func New(entries int) (*Ring, error) {
	if entries < 1 || entries > MaxEntries {
		return nil, fmt.Errorf("uring: entries %d: must be between 1 and %d", entries, MaxEntries)
	}
	if v := os.Getenv(EnvSwitch); v == "off" {
		return nil, fmt.Errorf("%w: %s=%s", ErrUnavailable, EnvSwitch, v)
	}
	var p params
	fd, err := setup(uint32(entries), &p, setupSubmitAll|setupCoopTaskrun)
	if err == unix.EINVAL {
		// Kernels before 5.19 refuse flags they do not know.
		p = params{}
		fd, err = setup(uint32(entries), &p, 0)
	}
	if err != nil {
		return nil, setupError(err)
	}
	r := &Ring{fd: fd, window: minWindow}
	if err := r.init(&p); err != nil {
		r.unmap()
		unix.Close(fd)
		return nil, err
	}
	r.readFn = r.readOnce
	return r, nil
}

func setup(entries uint32, p *params, flags uint32) (int, error) {
	p.flags = flags
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// setupError classifies io_uring_setup's errno.
func setupError(err error) error {
	switch err {
	case unix.ENOSYS:
		return fmt.Errorf("%w: io_uring_setup: %w (no io_uring in this kernel, kernel.io_uring_disabled, or a seccomp filter)", ErrUnavailable, err)
	case unix.EPERM, unix.EACCES:
		return fmt.Errorf("%w: io_uring_setup: %w (kernel.io_uring_disabled is 1 or 2, or a seccomp filter or LSM blocks it)", ErrUnavailable, err)
	}
	return fmt.Errorf("uring: io_uring_setup: %w", err)
}

func (r *Ring) init(p *params) error {
	if p.features&featSingleMmap == 0 {
		return fmt.Errorf("%w: kernel lacks IORING_FEAT_SINGLE_MMAP (Linux 5.4)", ErrUnavailable)
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	var err error
	r.rings, err = unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap rings: %w", err)
	}
	r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap SQEs: %w", err)
	}
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&r.rings[off])) }
	r.sqHead, r.sqTail = at(p.sqOff.head), at(p.sqOff.tail)
	r.sqMask, r.entries = *at(p.sqOff.ringMask), p.sqEntries
	r.tail = *r.sqTail
	// SQE i always sits in array slot i: fill the indirection array once.
	array := unsafe.Slice(at(p.sqOff.array), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead, r.cqTail = at(p.cqOff.head), at(p.cqOff.tail)
	r.cqMask = *at(p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&r.rings[p.cqOff.cqes])), p.cqEntries)
	r.res = make([]int32, p.sqEntries)
	return r.probe()
}

// probe checks that the kernel knows every opcode this package submits.
func (r *Ring) probe() error {
	var pr probe
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe,
		uintptr(unsafe.Pointer(&pr)), uintptr(len(pr.ops)), 0, 0)
	if errno == unix.EINVAL {
		return fmt.Errorf("%w: kernel lacks IORING_REGISTER_PROBE (Linux 5.6)", ErrUnavailable)
	}
	if errno != 0 {
		return fmt.Errorf("%w: io_uring_register(PROBE): %w", ErrUnavailable, errno)
	}
	return checkOps(&pr)
}

// needed names the opcodes the Ring submits.
var needed = []struct {
	op   uint8
	name string
}{{opRead, "IORING_OP_READ"}, {opWrite, "IORING_OP_WRITE"}, {opWritev, "IORING_OP_WRITEV"}}

func checkOps(pr *probe) error {
	for _, n := range needed {
		if int(n.op) >= int(pr.opsLen) || pr.ops[n.op].flags&probeOpSupported == 0 {
			return fmt.Errorf("%w: kernel does not support %s", ErrUnavailable, n.name)
		}
	}
	return nil
}

// Entries is how many SQEs one io_uring_enter carries.
func (r *Ring) Entries() int { return int(r.entries) }

const (
	idle int32 = iota
	busy
	closing // Close came while busy: the owner closes on release
	closed
)

// Close releases the ring; later calls return ErrClosed. Any goroutine may
// call it: while the owner is inside a call, Close returns nil at once and
// the ring goes when that call returns. A second Close returns nil.
func (r *Ring) Close() error {
	for {
		switch r.state.Load() {
		case idle:
			if r.state.CompareAndSwap(idle, closed) {
				return r.destroy()
			}
		case busy:
			if r.state.CompareAndSwap(busy, closing) {
				return nil
			}
		default:
			return nil
		}
	}
}

func (r *Ring) destroy() error {
	r.unmap()
	r.sqHead, r.sqTail, r.cqHead, r.cqTail, r.sqes, r.cqes = nil, nil, nil, nil, nil, nil
	if err := unix.Close(r.fd); err != nil {
		return fmt.Errorf("uring: close: %w", err)
	}
	return nil
}

func (r *Ring) unmap() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.rings != nil {
		unix.Munmap(r.rings)
		r.rings = nil
	}
}

// acquire marks the Ring busy for one call, or says why it cannot be used.
func (r *Ring) acquire() error {
	if r.state.CompareAndSwap(idle, busy) {
		if r.broken != nil {
			r.release()
			return r.broken
		}
		return nil
	}
	if s := r.state.Load(); s == closing || s == closed {
		return ErrClosed
	}
	panic("uring: a Ring used by two goroutines at once; give each goroutine its own Ring")
}

// release ends a call, closing the ring if Close came meanwhile.
func (r *Ring) release() {
	if !r.state.CompareAndSwap(busy, idle) {
		r.state.Store(closed)
		r.destroy()
	}
}

// prep fills the next SQE. addr is the address of Go memory the caller keeps
// alive (and off the goroutine stack) until the completion is reaped.
func (r *Ring) prep(op uint8, fd int, addr unsafe.Pointer, n, rwFlags uint32, userData uint64) {
	s := &r.sqes[r.tail&r.sqMask]
	*s = sqe{opcode: op, fd: int32(fd), addr: uint64(uintptr(addr)), len: n, rwFlags: rwFlags, userData: userData}
	r.tail++
}

// submitAndWait submits the SQEs prepared since the last call and reaps n
// completions into r.res[user_data]. The kernel's SQ head, not
// io_uring_enter's return value, says what was consumed, so an EINTR (Go
// preempts with signals) or a partial submission just loops.
//
// io_uring_enter is a raw syscall, as felt's other packet-path calls: the
// ring's files are non-blocking, so the wait is for work the kernel does
// at once (or an io-wq worker finishes shortly), and a normal syscall that
// long lets the runtime hand the P away and back, a context switch each way.
func (r *Ring) submitAndWait(n int) error {
	atomic.StoreUint32(r.sqTail, r.tail)
	reaped := 0
	for {
		head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			c := &r.cqes[head&r.cqMask]
			r.res[c.userData] = c.res
			reaped++
		}
		atomic.StoreUint32(r.cqHead, head)
		if reaped >= n {
			return nil
		}
		toSubmit := r.tail - atomic.LoadUint32(r.sqHead)
		_, _, errno := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit),
			uintptr(n-reaped), enterGetEvents, 0, 0)
		switch errno {
		case 0, unix.EINTR, unix.EAGAIN, unix.EBUSY:
			// EAGAIN/EBUSY: out of request memory or completions
			// pending; reap and try again.
		default:
			// SQEs may still sit in the queue pointing at the caller's
			// buffers: the ring must not be entered again.
			r.broken = fmt.Errorf("%w: io_uring_enter: %w", ErrBroken, errno)
			return r.broken
		}
	}
}

// errnoOf turns a negative CQE result into its errno. A syscall.Errno below
// 256 boxes into an error without allocating.
func errnoOf(res int32) error { return syscall.Errno(-res) }
