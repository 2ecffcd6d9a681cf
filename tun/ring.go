package tun

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/tun/internal/uring"
)

// The io_uring path: TUN reads as batches of READs and a Write's frames as
// WRITEVs, each batch in one io_uring_enter (package uring), with a Ring per
// direction because Read and Write run on different goroutines. Where
// io_uring is unavailable (see uring.ErrUnavailable) or switched off, the
// device reads with read(2) and writes with writev(2), one per frame.

// What IOPath returns starts with one of these.
const (
	IOPathUring       = "io_uring"                       // reads and writes
	IOPathUringWrites = "io_uring writes, read(2) reads" // the default: see Options
	IOPathSyscalls    = "read/writev"                    // followed by why
)

// IOPath says how the device moves frames: IOPathUring, IOPathUringWrites,
// or IOPathSyscalls followed by why (io_uring switched off by option,
// unavailable here, or dropped after a failure). Safe from any goroutine.
func (d *Device) IOPath() string {
	d.pathMu.Lock()
	defer d.pathMu.Unlock()
	return d.ioPath
}

// setupIO gives the device a Ring for writes, and for reads, as opts asks
// and io_uring allows, and logs which path it took and why.
func (d *Device) setupIO(opts Options) error {
	if !opts.IOUring {
		d.ioPath = IOPathSyscalls + " (io_uring off by option)"
		d.logPath("TUN I/O path")
		return nil
	}
	wr, err := uring.New(d.batch)
	var rr *uring.Ring
	if err == nil && opts.IOUringReads {
		if rr, err = uring.New(d.batch); err != nil {
			wr.Close()
		}
	}
	if err == nil {
		d.wr.ring, d.rd.ring = wr, rr
		d.rd.window = 1
		d.ioPath = IOPathUringWrites
		if rr != nil {
			d.ioPath = IOPathUring
		}
		d.logPath("TUN I/O path")
		return nil
	}
	if !errors.Is(err, uring.ErrUnavailable) {
		return fmt.Errorf("tun: %s: set up io_uring: %w", d.name, err)
	}
	d.ioPath = fmt.Sprintf("%s (%v)", IOPathSyscalls, err)
	d.logPath("TUN I/O path: io_uring unavailable, using read(2) and writev(2)", zap.Error(err))
	return nil
}

// logPath logs, at creation, the I/O path the device took and its read
// moderation (0: off).
func (d *Device) logPath(msg string, extra ...zap.Field) {
	d.log.Info(msg, append([]zap.Field{zap.String("tun", d.name), zap.String("path", d.ioPath),
		zap.Duration("read_moderation", d.rd.moderate)}, extra...)...)
}

func (d *Device) closeRings() {
	if d.rd.ring != nil {
		d.rd.ring.Close()
	}
	if d.wr.ring != nil {
		d.wr.ring.Close()
	}
}

// dropReadRing and dropWriteRing leave io_uring for good after a failed
// io_uring_enter (uring.ErrBroken): the direction goes on with syscalls.
// Each runs on its direction's goroutine.
func (d *Device) dropReadRing(err error) {
	d.rd.ring.Close()
	d.rd.ring = nil
	d.setPath("reads", err)
}

func (d *Device) dropWriteRing(err error) {
	d.wr.ring.Close()
	d.wr.ring = nil
	d.setPath("writes", err)
}

func (d *Device) setPath(dir string, err error) {
	d.pathMu.Lock()
	d.ioPath = fmt.Sprintf("%s for %s (io_uring failed: %v)", IOPathSyscalls, dir, err)
	d.pathMu.Unlock()
	d.log.Warn("TUN I/O path: io_uring failed, using syscalls", zap.String("tun", d.name),
		zap.String("direction", dir), zap.Error(err))
}

// maxWindow bounds the READs of one fillRing batch.
const maxWindow = 128

// fillRing is fill with io_uring: it reads frames in batches of READs into
// the caller's buffers and hands each to frame, until the TUN is empty, the
// buffers run low, or an error.
//
// A super-packet's segments need the buffers after its own, where the
// batch's later frames lie: those are copied aside (stash) and handed out by
// the next Read, before anything newer. To keep that rare under TCP bulk
// traffic (a stream of super-packets), a batch after one that held a
// super-packet is a single READ, and the batch doubles while it holds none.
func (r *reader) fillRing(fd int, bufs [][]byte, sizes []int, offset int) (int, error) {
	if cap(r.frames) < len(bufs) {
		r.frames, r.fsizes = make([][]byte, len(bufs)), make([]int, len(bufs))
	}
	i := 0
	for i < len(bufs) {
		if i > 0 && len(bufs)-i < maxSegmentsFit {
			return i, nil
		}
		k := min(r.window, len(bufs)-i)
		frames := r.frames[:k]
		for j := range frames {
			frames[j] = bufs[i+j][offset-VirtioHdrLen:]
		}
		got, err := r.ring.Read(fd, frames, r.fsizes[:k])
		clear(frames) // keep no reference to the caller's buffers
		if errors.Is(err, uring.ErrClosed) {
			err = os.ErrClosed // Close came while Read was on its way in
		}
		if got == 0 {
			return i, err
		}
		n, gso, stop := r.batch(bufs[i:], sizes[i:], k, offset)
		i += n
		if gso {
			r.window = 1
		} else if got == k {
			r.window = min(2*k, maxWindow)
		}
		// Fewer frames than READs: the TUN ran dry (or a READ failed).
		if stop || got < k || err != nil {
			return i, err
		}
	}
	return i, nil
}

// batch hands the k frames of a READ batch, in bufs[:k] with lengths in
// r.fsizes (0: that READ found nothing), to frame in order, moving a frame
// down over the buffers of empty READs and dropped frames. It returns the
// packets produced, whether a super-packet came, and stop when the call
// must read nothing more (a super-packet parked or frames stashed).
func (r *reader) batch(bufs [][]byte, sizes []int, k, offset int) (n int, gso, stop bool) {
	base := offset - VirtioHdrLen
	for j := 0; j < k; j++ {
		m := r.fsizes[j]
		if m == 0 {
			continue
		}
		if n != j {
			copy(bufs[n][base:], bufs[j][base:base+m]) // rare: see above
		}
		if m >= VirtioHdrLen && parseVirtioHdr(bufs[n][base:]).gsoType != gsoNone {
			gso = true
			if r.stashFrom(bufs, j+1, k, base) {
				stop = true
				k = j + 1
			}
		}
		c, parked := r.frame(bufs[n:], sizes[n:], m, offset)
		n += c
		if parked {
			return n, gso, true
		}
	}
	return n, gso, stop
}

// stashFrom copies the frames of bufs[from:k] (lengths in r.fsizes) aside,
// in order, and reports whether there were any.
func (r *reader) stashFrom(bufs [][]byte, from, k, base int) bool {
	any := false
	for j := from; j < k; j++ {
		if m := r.fsizes[j]; m > 0 {
			r.stash.push(bufs[j][base : base+m])
			any = true
		}
	}
	return any
}

// unstash hands the stashed frames to frame, in order, as far as bufs go;
// it returns the packets produced.
func (r *reader) unstash(bufs [][]byte, sizes []int, offset int) int {
	s := &r.stash
	i := 0
	for s.pending() && i < len(bufs) {
		if i > 0 && len(bufs)-i < maxSegmentsFit {
			break
		}
		m := copy(bufs[i][offset-VirtioHdrLen:], s.pop())
		n, parked := r.frame(bufs[i:], sizes[i:], m, offset)
		i += n
		if parked {
			break
		}
	}
	return i
}

// stash holds whole frames back to back, first in first out. Its memory is
// kept for the next use.
type stash struct {
	data []byte
	ends []int // end of frame i in data
	next int   // the next frame to pop
}

func (s *stash) pending() bool { return s.next < len(s.ends) }

func (s *stash) push(frame []byte) {
	s.data = append(s.data, frame...)
	s.ends = append(s.ends, len(s.data))
}

// pop returns the next frame, valid until the next push.
func (s *stash) pop() []byte {
	start := 0
	if s.next > 0 {
		start = s.ends[s.next-1]
	}
	f := s.data[start:s.ends[s.next]]
	s.next++
	if s.next == len(s.ends) {
		s.data, s.ends, s.next = s.data[:0], s.ends[:0], 0
	}
	return f
}

// growRing sizes the ring path's scratch for batches of n packets.
func (w *writer) growRing(n int) {
	// A run of k packets takes k+1 iovecs (its virtio header has its
	// own), so n packets take at most 2n; the last run's slice reaches
	// maxRun+2 past where it starts.
	w.iovs = make([]unix.Iovec, 2*n+maxRun+2)
	w.vecs = make([][]unix.Iovec, n)
	w.runs, w.want, w.res = make([]int, n), make([]int, n), make([]int, n)
}

// writeRing is writeAll with io_uring: every run of w.bufs (a coalesced
// super-packet, or a lone packet) becomes one WRITEV, all in one enter; the
// kernel runs them in submission order, so order within a flow is kept.
func (d *Device) writeRing(fd int) {
	w := &d.wr
	info := w.info[:len(w.bufs)]
	runs, used := 0, 0
	for i := 0; i < len(w.bufs); {
		if info[i].drop != drop.OK {
			i++
			continue
		}
		vh := w.vhs[runs*VirtioHdrLen : (runs+1)*VirtioHdrLen]
		iov, n := d.prepRun(w.iovs[used:used+2:used+maxRun+2], vh, w.bufs, info, i, w.offset)
		want := 0
		for _, v := range iov {
			want += int(v.Len)
		}
		w.vecs[runs], w.runs[runs], w.want[runs] = iov, n, want
		runs++
		used += len(iov)
		i += n
	}
	if runs == 0 {
		return
	}
	if runs == 1 {
		// One frame: writev(2) is one syscall too, without the ring's
		// bookkeeping (and raw for a small frame, see writev).
		err := writev(fd, w.vecs[0])
		clear(w.vecs[:1])
		if err != nil {
			w.first = err
		} else {
			w.done += w.runs[0]
		}
		return
	}
	_, err := w.ring.Writev(fd, w.vecs[:runs], w.res[:runs])
	clear(w.vecs[:runs]) // keep no reference to the caller's buffers
	switch {
	case errors.Is(err, uring.ErrClosed):
		w.first = os.ErrClosed // Close came while Write was on its way in
		return
	case errors.Is(err, uring.ErrBroken):
		// Some WRITEVs may have gone out: done (0 more) is a lower bound.
		// A limit we accept: a WRITEV the kernel took but has not finished
		// (one punted to an io-wq worker) may still read the caller's
		// buffers after Write returns, and closing the ring does not wait
		// for it. It takes an io_uring_enter failing with an errno other
		// than EINTR, EAGAIN or EBUSY, which has not been seen here.
		w.first = err
		d.dropWriteRing(err)
		return
	case err != nil:
		// Refused before submitting (an argument check): res is stale.
		w.first = err
		return
	}
	for k := 0; k < runs; k++ {
		switch res := w.res[k]; {
		case res == w.want[k]:
			w.done += w.runs[k]
		case w.first != nil:
		case res < 0:
			w.first = unix.Errno(-res)
		default:
			w.first = io.ErrShortWrite
		}
	}
}
