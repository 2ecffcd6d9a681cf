package uring

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read reads packets from fd into bufs with IORING_OP_READs, several per
// io_uring_enter, and reaps their completions. sizes[i] gets the length read into bufs[i], or 0 if that
// READ found nothing. It returns how many buffers got a packet.
//
// A READ that finds the TUN empty is not free (a request, the TUN queue's
// lock, a completion), so Read does not submit one per buffer blindly: it starts with as
// many READs as the previous call got packets (at least minWindow) and
// doubles the next enter's READs while every READ of the last one got a
// packet, until bufs are full or the TUN is empty.
//
// Each READ carries RWF_NOWAIT, so that a READ on an empty TUN completes at
// once with EAGAIN. Without it io_uring parks the READ in an internal poll
// on the fd, even on an O_NONBLOCK fd, and wakes every parked READ (or hands
// it to its io-wq worker threads) when a packet comes: slower than reading
// until empty and waiting once. fd's file must support RWF_NOWAIT (TUN,
// pipes and sockets do; otherwise each READ fails with EOPNOTSUPP).
//
// Each READ runs in submission order inside the enter, so packets land in
// bufs in the order the TUN had them; a packet that arrives between two
// READs can leave an empty buffer before a full one, so callers skip
// sizes[i] == 0 rather than stop there. When no READ got a packet Read
// returns 0, unix.EAGAIN: wait for readability (ReadConn does) and call
// again. Another failure of a READ is returned as its unix.Errno beside
// the count: use the n packets first, as with io.Reader.
//
// Buffers: from submission until Read returns, bufs[i][:len(bufs[i])]
// belongs to the kernel; it must be heap memory (not on a goroutine stack,
// which may move). Every buffer must be non-empty and len(sizes) >=
// len(bufs). A call allocates nothing.
func (r *Ring) Read(fd int, bufs [][]byte, sizes []int) (int, error) {
	if err := r.acquire(); err != nil {
		return 0, err
	}
	defer r.release()
	return r.read(fd, bufs, sizes)
}

func (r *Ring) read(fd int, bufs [][]byte, sizes []int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("uring: read: len(sizes) %d: must be at least len(bufs) %d", len(sizes), len(bufs))
	}
	for i, b := range bufs {
		if len(b) == 0 || len(b) > math.MaxInt32 {
			return 0, fmt.Errorf("uring: read: len(bufs[%d]) %d: must be between 1 and %d", i, len(b), math.MaxInt32)
		}
	}
	n := 0
	var first error
	chunk := r.window
	for start := 0; start < len(bufs); start += chunk {
		if start > 0 {
			chunk = min(2*chunk, int(r.entries))
		}
		end := min(start+chunk, len(bufs))
		for i := start; i < end; i++ {
			b := bufs[i]
			r.prep(opRead, fd, unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)), rwfNowait, uint64(i-start))
		}
		if err := r.submitAndWait(end - start); err != nil {
			return n, err
		}
		empty := false
		for i := start; i < end; i++ {
			res := r.res[i-start]
			switch {
			case res > 0:
				sizes[i] = int(res)
				n++
			case res == -int32(unix.EAGAIN) || res == 0:
				sizes[i] = 0
				empty = true
			default:
				sizes[i] = 0
				empty = true
				if first == nil {
					first = errnoOf(res)
				}
			}
		}
		if empty {
			// The TUN ran dry (or failed): no point in another chunk.
			clear(sizes[end:len(bufs)])
			break
		}
	}
	runtime.KeepAlive(bufs)
	r.window = min(max(n, minWindow), int(r.entries))
	if n == 0 && first == nil {
		return 0, unix.EAGAIN
	}
	return n, first
}

// minWindow is the fewest READs Read starts with.
const minWindow = 4

// ReadConn is Read on the fd behind rc (the TUN's os.File.SyscallConn()),
// waiting in the Go netpoller while the fd is empty: it returns when at
// least one packet was read, a READ failed, or the file was closed (then
// with rc's error, os.ErrClosed or the like). The wait is epoll, not an
// io_uring poll. Buffer rules as for Read; a call allocates nothing.
func (r *Ring) ReadConn(rc syscall.RawConn, bufs [][]byte, sizes []int) (int, error) {
	if err := r.acquire(); err != nil {
		return 0, err
	}
	defer r.release()
	r.rBufs, r.rSizes, r.rN, r.rErr = bufs, sizes, 0, nil
	err := rc.Read(r.readFn)
	n, rerr := r.rN, r.rErr
	r.rBufs, r.rSizes, r.rErr = nil, nil, nil
	if err != nil && n == 0 {
		return 0, err
	}
	return n, rerr
}

// readOnce is ReadConn's callback: false (wait for readability) only when
// every READ found the TUN empty.
func (r *Ring) readOnce(fd uintptr) bool {
	r.rN, r.rErr = r.read(int(fd), r.rBufs, r.rSizes)
	return !(r.rN == 0 && r.rErr == unix.EAGAIN)
}

// Write submits one IORING_OP_WRITE per packet, pkts[i] whole, on fd, all
// in one io_uring_enter (several when len(pkts) > Entries()), and reaps the
// completions. A packet the kernel refuses does not stop the others. It
// returns how many packets were written whole and the first failure in
// pkts order: the packet's unix.Errno, or io.ErrShortWrite. If res is not
// nil (len(res) >= len(pkts)), res[i] gets packet i's result: bytes written
// or -errno.
//
// Buffers: pkts[i] belongs to the kernel from submission until Write
// returns and must be heap memory. Every packet must be non-empty. A call
// allocates nothing.
func (r *Ring) Write(fd int, pkts [][]byte, res []int) (int, error) {
	return writeAll(r, writeOp, fd, pkts, res, writeEntry)
}

// MaxIovecs bounds the iovecs of one Writev packet (the kernel's IOV_MAX).
const MaxIovecs = 1024

// Writev is Write for packets in pieces: pkts[i] is the iovec list of
// packet i (a virtio/IP header and the payloads of a coalesced run, say),
// written with one IORING_OP_WRITEV. Results and errors as for Write; a
// packet counts as written when all of its bytes were.
//
// Buffers: the iovec arrays and the memory they point at belong to the
// kernel from submission until Writev returns (the kernel copies the arrays
// at submission; the memory must stay put until completion) and must be
// heap memory. Every packet needs 1 to MaxIovecs iovecs. A call allocates
// nothing.
func (r *Ring) Writev(fd int, pkts [][]unix.Iovec, res []int) (int, error) {
	return writeAll(r, writevOp, fd, pkts, res, writevEntry)
}

// writeKind is what Write and Writev differ in: the opcode, names for
// errors, and the most a packet's sqe length (bytes or iovecs) may be.
type writeKind struct {
	op         uint8
	name, unit string
	max        int
}

var (
	writeOp  = writeKind{op: opWrite, name: "write", max: math.MaxInt32}
	writevOp = writeKind{op: opWritev, name: "writev", unit: " iovecs", max: MaxIovecs}
)

// writeEntry is a WRITE's buffer: the packet's bytes.
func writeEntry(p []byte) (addr unsafe.Pointer, n, size int) {
	return unsafe.Pointer(unsafe.SliceData(p)), len(p), len(p)
}

// writevEntry is a WRITEV's buffer: the iovec array, and the packet's size
// is the sum of its iovecs.
func writevEntry(iov []unix.Iovec) (addr unsafe.Pointer, n, size int) {
	for _, v := range iov {
		size += int(v.Len)
	}
	return unsafe.Pointer(unsafe.SliceData(iov)), len(iov), size
}

// writeAll is Write and Writev: it checks the arguments, then submits one
// op per packet, in chunks of the ring's size, each chunk one
// io_uring_enter. entry gives a packet's sqe address and length and the
// bytes a whole write returns.
func writeAll[P any](r *Ring, k writeKind, fd int, pkts []P, res []int, entry func(P) (unsafe.Pointer, int, int)) (int, error) {
	if err := r.acquire(); err != nil {
		return 0, err
	}
	defer r.release()
	if res != nil && len(res) < len(pkts) {
		return 0, fmt.Errorf("uring: %s: len(res) %d: must be 0 (nil) or at least len(pkts) %d", k.name, len(res), len(pkts))
	}
	for i, p := range pkts {
		if _, l, _ := entry(p); l == 0 || l > k.max {
			return 0, fmt.Errorf("uring: %s: len(pkts[%d]) %d%s: must be between 1 and %d", k.name, i, l, k.unit, k.max)
		}
	}
	n := 0
	var first error
	for start := 0; start < len(pkts); start += int(r.entries) {
		end := min(start+int(r.entries), len(pkts))
		for i := start; i < end; i++ {
			addr, l, _ := entry(pkts[i])
			r.prep(k.op, fd, addr, uint32(l), 0, uint64(i-start))
		}
		if err := r.submitAndWait(end - start); err != nil {
			return n, err
		}
		for i := start; i < end; i++ {
			got := r.res[i-start]
			if res != nil {
				res[i] = int(got)
			}
			_, _, size := entry(pkts[i])
			n, first = tally(got, size, n, first)
		}
	}
	runtime.KeepAlive(pkts)
	return n, first
}

// tally counts one write's completion.
func tally(got int32, want, n int, first error) (int, error) {
	switch {
	case int(got) == want:
		return n + 1, first
	case got < 0:
		if first == nil {
			first = errnoOf(got)
		}
	default:
		if first == nil {
			first = io.ErrShortWrite
		}
	}
	return n, first
}
