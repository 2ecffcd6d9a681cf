package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/internal/envus"
	"github.com/feltnet/felt/tun/internal/uring"
)

// Device is felt's TUN device: a file descriptor opened with IFF_VNET_HDR
// and segmentation offloads on (see Create), read and written in batches.
// Read takes every frame the TUN has queued, up to the batch, in one wake-up,
// and splits TSO/USO super-packets itself: segment 0 stays in place, later
// segments get their header and payload copied, and checksums are computed
// once per segment. Write coalesces TCP and UDP runs into super-packets (see
// gro.go). The device starts no goroutine and keeps no netlink listener:
// link changes (MTU, up/down) need nothing from it.
//
// Read, Write, BatchSize, MTU and Close have the signatures of
// golang.zx2c4.com/wireguard/tun's Device (Name returns no error, as it
// cannot fail; there is no File and no Events), so an adapter to that
// interface, for a wireguard backend, stays small.
//
// Concurrency: one goroutine may Read at a time; Write may run concurrently
// from another goroutine (they use the fd independently and keep separate
// state). Close may be called from any goroutine, more than once.
type Device struct {
	file  *os.File
	rc    syscall.RawConn
	name  string
	batch int
	uso   bool // the kernel takes UDP super-packets (GSO_UDP_L4) on write
	// mtu is the link's MTU when the device was made: Write splits a TCP
	// packet longer than this into segments that fit it. An MTU an admin
	// changes later is not seen (a smaller egress MTU then still gets
	// segments of this size, and its ICMP; docs/flannel-interop.md).
	mtu int

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool // the fd's poller error does not match os.ErrClosed

	pathMu sync.Mutex
	ioPath string      // see IOPath
	log    *zap.Logger // never nil

	rd reader
	wr writer
}

// reader is Read's state, owned by the reading goroutine. Frames come from
// read(2) (fill) or from io_uring READ batches (fillRing, with ring set);
// either way every frame goes through frame, the one place that checks,
// splits, parks and counts drops.
type reader struct {
	parked parked
	stash  stash                   // frames of a ring batch set aside for a super-packet's segments
	hdr    []byte                  // split's header scratch
	err    error                   // the last read error of fill or fillRing
	drops  [drop.NumReasons]uint32 // since the last ReadDrops

	ring   *uring.Ring // nil: read(2)
	frames [][]byte    // fillRing's READ targets: views of the caller's buffers during a call
	fsizes []int       // their lengths
	window int         // READs fillRing submits next: see fillRing

	// Arguments and results of the RawConn callback, which is bound once.
	fn            func(uintptr) bool
	bufs          [][]byte
	sizes         []int
	offset, got   int
	waitWhenEmpty bool

	// Read moderation (readOnce): the packet rate over the last window,
	// and whether the last fill was a run of small packets at a high rate.
	winStart time.Duration // since clockBase
	winPkts  int
	hot      bool          // the last window's rate was at least moderateRate
	busy     bool          // hot, and the last fill read a run of small packets
	moderate time.Duration // the sleep (Options.Moderate); 0: off
	naps     uint64        // moderation's sleeps, for tests and benchmarks
	ts       unix.Timespec // the sleep's argument
}

// parked is a super-packet that did not fit the caller's remaining buffers,
// split and waiting to be handed out by the next Reads.
type parked struct {
	first []byte   // a copy of the super-packet; segment 0 is split in place here
	segs  [][]byte // segments 1..: views of back, one segment each
	back  []byte
	sizes []int
	left  int // segments still to hand out
	next  int // index of the next one
}

// newDevice wraps f, a TUN fd opened with IFF_VNET_HDR and offloads on, and
// sets up its I/O path as opts asks.
func newDevice(f *os.File, name string, batch int, uso bool, opts Options) (*Device, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", name, err)
	}
	if batch < maxSegmentsFit*2 {
		batch = maxSegmentsFit * 2
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	d := &Device{file: f, rc: rc, name: name, batch: batch, uso: uso, log: log}
	d.rd.hdr = make([]byte, 256)
	d.rd.fn, d.wr.fn = d.readOnce, d.writeAll
	d.rd.moderate = opts.Moderate
	if err := d.setupIO(opts); err != nil {
		return nil, err
	}
	return d, nil
}

// Name is the device's interface name.
func (d *Device) Name() string { return d.name }

// MTU is the link's MTU as the kernel has it now.
func (d *Device) MTU() (int, error) {
	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return 0, fmt.Errorf("tun: MTU of %s: %w", d.name, err)
	}
	return link.Attrs().MTU, nil
}

// BatchSize is how many buffers Read wants.
func (d *Device) BatchSize() int { return d.batch }

// Control calls f with the TUN's fd, held open for the call (a Close waits
// for it): for polling its readiness, never for reading or writing, which
// are Read's and Write's.
func (d *Device) Control(f func(fd uintptr)) error { return d.rc.Control(f) }

// Close closes the fd: a blocked Read and every later Read or Write return
// an error wrapping os.ErrClosed. A TUN that Create made goes away with its
// last fd; a persistent one stays. Later calls return nil.
func (d *Device) Close() error {
	first := false
	d.closeOnce.Do(func() {
		first = true
		d.closed.Store(true)
		if err := d.file.Close(); err != nil {
			d.closeErr = fmt.Errorf("tun: close %s: %w", d.name, err)
		}
		// After the fd: a Read waiting in the poller returns, and a ring
		// inside a call goes when that call ends.
		d.closeRings()
	})
	if !first {
		return nil
	}
	return d.closeErr
}

// Read fills bufs[i][offset:offset+sizes[i]] with up to len(bufs) packets,
// blocking until at least one is there, or until a wake-up found only frames
// it dropped (then it returns 0, nil: collect them with ReadDrops). The
// offset must be the same on every call (parked segments keep their place)
// and >= VirtioHdrLen, and every buffer must hold offset+65535 bytes. The
// caller owns bufs; Read writes into them (the virtio header into the
// headroom) and keeps nothing.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < VirtioHdrLen {
		return 0, fmt.Errorf("tun: read offset %d: must be at least %d", offset, VirtioHdrLen)
	}
	r := &d.rd
	n := r.parked.drain(bufs, sizes, offset)
	if n < len(bufs) && r.stash.pending() {
		n += r.unstash(bufs[n:], sizes[n:], offset)
	}
	// Set-aside frames and segments go out before anything newer is read.
	if n == len(bufs) || r.parked.left > 0 || r.stash.pending() {
		return n, nil
	}
	r.bufs, r.sizes, r.offset, r.waitWhenEmpty = bufs[n:], sizes[n:], offset, n == 0
	// rc.Read may fail before calling readOnce (the fd closed): what it
	// left from the previous call must not count again.
	r.got, r.err = 0, nil
	err := d.rc.Read(r.fn)
	got := r.got
	r.bufs, r.sizes = nil, nil
	n += got
	if err != nil {
		if n > 0 {
			return n, nil
		}
		return 0, d.ioError(err)
	}
	if r.err != nil && r.err != unix.EAGAIN && n == 0 {
		if errors.Is(r.err, os.ErrClosed) {
			return 0, d.ioError(r.err)
		}
		return 0, r.err
	}
	return n, nil
}

// ReadDrops adds to counts[r] the frames Read dropped for reason r since
// the last call and resets its own counts. Call it from the goroutine that
// reads.
func (d *Device) ReadDrops(counts *[drop.NumReasons]uint32) { takeDrops(&d.rd.drops, counts) }

// WriteDrops is ReadDrops for Write, from the goroutine that writes.
func (d *Device) WriteDrops(counts *[drop.NumReasons]uint32) { takeDrops(&d.wr.drops, counts) }

// takeDrops adds from's counts to to's and zeroes from. from[drop.OK]
// counts what passed (Write counts every packet) and is not reported.
func takeDrops(from, to *[drop.NumReasons]uint32) {
	from[drop.OK] = 0
	if *from == ([drop.NumReasons]uint32{}) {
		return // the usual batch: one compare, not a walk over every reason
	}
	for r := drop.OK + 1; r < drop.NumReasons; r++ {
		to[r] += from[r]
	}
	*from = [drop.NumReasons]uint32{}
}

// ioError is what Read and Write return when the poller refuses the fd:
// os.ErrClosed once Close ran, as for any closed *os.File.
func (d *Device) ioError(err error) error {
	if d.closed.Load() || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("tun: %s: %w", d.name, os.ErrClosed)
	}
	return fmt.Errorf("tun: %s: %w", d.name, err)
}

// readOnce is Read's RawConn callback, bound once (a closure per call would
// allocate).
func (d *Device) readOnce(fd uintptr) bool {
	r := &d.rd
	before := r.dropped()
	d.fillOnce(int(fd))
	if r.got == 0 && r.err == unix.EAGAIN && r.waitWhenEmpty && r.busy && r.moderate > 0 && r.dropped() == before {
		// The last fill found a run of small packets and the TUN is empty
		// now: it is fed faster than one packet per wake-up but slower than
		// it is drained. A short sleep instead of a wake-up per few packets
		// lets a batch gather (interrupt moderation): fewer wake-ups and
		// context switches per packet, each dearer than a packet's read.
		r.busy = false
		r.naps++
		r.ts = unix.NsecToTimespec(int64(r.moderate))
		// Raw, as the packet path's other calls: the thread keeps its P
		// while it sleeps. A plain syscall let the runtime hand the P on
		// (when the other P is busy it does, waking another thread) and
		// measured ~11 % fewer flood packets; the price is that nothing
		// else runs on this P for the sleep, so the caller turns
		// moderation off where Ps are fewer than loops.
		unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&r.ts)), 0, 0)
		d.fillOnce(int(fd))
	}
	r.busy = r.rate(time.Since(clockBase)) && r.got >= moderateMin && smallRun(r.sizes[:r.got])
	// Wait for readability only when nothing at all is there yet: a
	// wake-up that only dropped frames returns, so that the caller
	// collects their counts now.
	return !(r.got == 0 && r.waitWhenEmpty && r.err == unix.EAGAIN && r.dropped() == before)
}

// rate counts the last fill's packets into the rate window and reports
// whether the last complete window (moderateWindow or longer, ending at the
// first fill after it) ran at moderateRate or more: a flood of small
// packets, not many request/response flows, whose packets a sleep would
// only delay.
func (r *reader) rate(now time.Duration) bool {
	r.winPkts += r.got
	if el := now - r.winStart; el >= moderateWindow {
		r.hot = float64(r.winPkts) >= moderateRate*el.Seconds()
		r.winStart, r.winPkts = now, 0
	}
	return r.hot
}

// clockBase makes time.Since a monotonic clock reading without allocation.
var clockBase = time.Now()

// fillOnce reads what the TUN has into the call's buffers, with the ring
// or read(2), setting r.got and r.err.
func (d *Device) fillOnce(fd int) {
	r := &d.rd
	if r.ring != nil {
		r.got, r.err = r.fillRing(fd, r.bufs, r.sizes, r.offset)
		if r.got == 0 && errors.Is(r.err, uring.ErrBroken) {
			d.dropReadRing(r.err)
			r.got, r.err = r.fill(fd, r.bufs, r.sizes, r.offset)
		}
		return
	}
	r.got, r.err = r.fill(fd, r.bufs, r.sizes, r.offset)
}

// Read moderation (Options.Moderate): while packets come at moderateRate
// or more, after a fill of at least moderateMin packets averaging at most
// moderateSmall bytes, a Read that finds the TUN empty sleeps before it
// parks. One request/response reads one packet a wake-up, sixteen of them
// came slower than moderateRate on the machine it was measured on, and bulk
// TCP reads large segments: none of them sleeps there.
const (
	moderateMin     = 4
	moderateSmall   = 256
	moderateDefault = 50 * time.Microsecond
	moderateMax     = time.Millisecond
	// ModerateEnv overrides DefaultOptions' Moderate: whole microseconds,
	// 0 to 1000 (0 turns moderation off).
	ModerateEnv = "FELT_TUN_MODERATE"
)

// Variables, not constants, so that tests can change them.
var (
	moderateRate   = 150e3 // packets a second
	moderateWindow = 250 * time.Microsecond
)

// moderateFromEnv is ModerateEnv's sleep, or moderateDefault if it is
// unset; a value it cannot take gives moderateDefault and an error naming
// the variable, the value and the rule.
func moderateFromEnv() (time.Duration, error) {
	d, err := envus.Get(ModerateEnv, moderateDefault, moderateMax)
	if err != nil {
		return d, fmt.Errorf("tun: %w", err)
	}
	return d, nil
}

// smallRun reports whether packets of these sizes average at most
// moderateSmall bytes.
func smallRun(sizes []int) bool {
	sum := 0
	for _, n := range sizes {
		sum += n
	}
	return sum <= len(sizes)*moderateSmall
}

// dropped is the number of frames Read dropped since the last ReadDrops.
func (r *reader) dropped() uint32 {
	var n uint32
	for _, c := range r.drops {
		n += c
	}
	return n
}

// maxSegmentsFit bounds the segments one super-packet may need; Read stops
// reading new frames when fewer buffers than this are left, so a 64 KiB
// super-packet at a typical MSS is split straight into the caller's buffers.
const maxSegmentsFit = 48

// fill reads frames with read(2) until the TUN is empty (EAGAIN), the
// buffers run low, or an error; it returns the packets produced.
func (r *reader) fill(fd int, bufs [][]byte, sizes []int, offset int) (int, error) {
	i := 0
	for i < len(bufs) {
		if i > 0 && len(bufs)-i < maxSegmentsFit {
			return i, nil
		}
		m, err := rawRead(fd, bufs[i][offset-VirtioHdrLen:])
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return i, err
		}
		n, parked := r.frame(bufs[i:], sizes[i:], m, offset)
		i += n
		if parked {
			return i, nil
		}
	}
	return i, nil
}

// frame turns the frame of m bytes at bufs[0][offset-VirtioHdrLen:] into
// packets at bufs[k][offset:offset+sizes[k]]: itself (checksum finished), or
// a super-packet's segments, segment 0 in place and the others in bufs[1:].
// It returns how many buffers it filled; parked is true when the
// super-packet had more segments than bufs and was parked (its first
// segments handed out here, the rest by the next Reads): the caller must
// read no further frames in this call. A bad frame is counted and gives 0.
func (r *reader) frame(bufs [][]byte, sizes []int, m, offset int) (n int, parked bool) {
	if m < VirtioHdrLen {
		r.drops[drop.TUNShortRead]++
		return 0, false
	}
	frame := bufs[0][offset-VirtioHdrLen:]
	h := parseVirtioHdr(frame)
	pkt := frame[VirtioHdrLen:m]
	if h.gsoType == gsoNone {
		if h.flags&virtioNeedsCsum != 0 && finishCsum(pkt, h) != nil {
			r.drops[drop.TUNBadHeader]++
			return 0, false
		}
		sizes[0] = len(pkt)
		return 1, false
	}
	segs, err := segments(pkt, h)
	if err != nil {
		r.drops[drop.TUNBadGSO]++
		return 0, false
	}
	if segs <= len(bufs) {
		if _, err := split(pkt, h, bufs, sizes, offset, r.hdr); err != nil {
			r.drops[drop.TUNBadGSO]++
			return 0, false
		}
		return segs, false
	}
	// Too many segments for what is left: park it and hand it out from
	// the next Read.
	if !r.parked.park(pkt, h, segs, offset, r.hdr) {
		r.drops[drop.TUNBadGSO]++
		return 0, false
	}
	return r.parked.drain(bufs, sizes, offset), true
}

// park splits pkt into p's buffers: views of one backing array, each just
// large enough for one segment, so that a super-packet of many tiny segments
// (MSS 48 gives ~1,300) does not pin 64 KiB per segment.
func (p *parked) park(pkt []byte, h virtioHdr, segs, offset int, hdr []byte) bool {
	_, hdrLen, err := gsoHeaders(pkt, h)
	if err != nil {
		p.left = 0
		return false
	}
	stride := offset + hdrLen + int(h.gsoSize)
	if need := segs * stride; cap(p.back) < need {
		p.back = make([]byte, need)
	}
	p.segs = p.segs[:0]
	for j := 0; j < segs; j++ {
		p.segs = append(p.segs, p.back[j*stride:(j+1)*stride:(j+1)*stride])
	}
	if len(p.sizes) < segs {
		p.sizes = make([]int, segs)
	}
	if cap(p.first) < offset+len(pkt) {
		p.first = make([]byte, offset+65535)
	}
	p.first = p.first[:offset+len(pkt)]
	copy(p.first[offset:], pkt)
	// Segment 0 is split in place in first; later ones land in segs.
	n, err := split(p.first[offset:], h, p.segs, p.sizes, offset, hdr)
	if err != nil {
		p.left = 0
		return false
	}
	p.left, p.next = n, 0
	return true
}

// drain copies parked segments into bufs and returns how many.
func (p *parked) drain(bufs [][]byte, sizes []int, offset int) int {
	i := 0
	for p.left > 0 && i < len(bufs) {
		j := p.next
		src := p.segs[j][offset : offset+p.sizes[j]]
		if j == 0 {
			src = p.first[offset : offset+p.sizes[0]]
		}
		sizes[i] = copy(bufs[i][offset:], src)
		i++
		p.next++
		p.left--
	}
	return i
}

// maxRun bounds the segments one coalesced write carries.
const maxRun = 64

// writer is Write's state, owned by the writing goroutine; its scratch is
// allocated once.
type writer struct {
	iov  [maxRun + 2]unix.Iovec // the virtio header, the first packet, the followers' payloads
	info []l4Info
	// vhs holds the virtio header of every run of a Write, VirtioHdrLen
	// bytes each: with io_uring all runs are submitted in one enter, so
	// each run's header must stay as it is until the kernel has taken it.
	vhs []byte

	// The io_uring path (ring set): one WRITEV per run, all of a Write's
	// runs in one enter. iovs backs every run's iovec list; vecs[k] is run
	// k's list, runs[k] its packet count, want[k] its bytes, res[k] the
	// kernel's answer. Sized on first use, reused after.
	ring *uring.Ring // nil: writev(2)
	iovs []unix.Iovec
	vecs [][]unix.Iovec
	runs []int
	want []int
	res  []int

	// Arguments and results of the RawConn callback, which is bound once.
	fn     func(uintptr) bool
	bufs   [][]byte
	offset int
	done   int
	first  error

	drops [drop.NumReasons]uint32 // since the last WriteDrops
}

// Write hands packets bufs[i][offset:] to the kernel after verifying their
// checksums (see gro.go): runs of consecutive segments of one TCP or UDP
// flow as one GSO super-packet (one writev, or one io_uring WRITEV with all
// of the call's frames in one enter; payloads as iovecs), a TCP packet
// longer than the link's MTU as GSO in segments that fit it, every other
// TCP/UDP packet with a partial checksum, anything else as it is. A packet
// that fails verification is dropped and counted (see WriteDrops).
//
// Buffers: the caller owns bufs; Write keeps nothing after it returns. Each
// run's virtio header comes from the Device's own scratch, handed to the
// kernel as an iovec of its own, so offset may be anything from 0 and
// nothing in front of bufs[i][offset:] is read or written: packets may lie
// back to back in one array (the datagrams of a GRO train). Packet headers
// (IP length and checksum, the TCP/UDP length and checksum, TCP PSH) are
// rewritten in place. It returns how many packets were handed over
// (packets, not bytes as wireguard-go's Write) and the first error; a packet
// the kernel refuses does not stop the rest.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if offset < 0 {
		return 0, fmt.Errorf("tun: write offset %d: must not be negative", offset)
	}
	w := &d.wr
	if cap(w.info) < len(bufs) {
		w.info = make([]l4Info, len(bufs))
		w.vhs = make([]byte, len(bufs)*VirtioHdrLen)
	}
	if w.ring != nil && len(w.runs) < len(bufs) {
		w.growRing(len(bufs))
	}
	info := w.info[:len(bufs)]
	for i := range bufs {
		info[i] = inspect(bufs[i][offset:])
		w.drops[info[i].drop]++ // drop.OK's slot is never reported
	}
	w.bufs, w.offset, w.done, w.first = bufs, offset, 0, nil
	err := d.rc.Write(w.fn)
	done, first := w.done, w.first
	w.bufs = nil
	if err != nil {
		return done, d.ioError(err)
	}
	if first != nil {
		return done, fmt.Errorf("tun: write: %w", first)
	}
	return done, nil
}

// writeAll is Write's RawConn callback, bound once.
func (d *Device) writeAll(fd uintptr) bool {
	w := &d.wr
	if w.ring != nil {
		d.writeRing(int(fd))
		return true
	}
	info := w.info[:len(w.bufs)]
	for i := 0; i < len(w.bufs); {
		if info[i].drop != drop.OK {
			i++
			continue
		}
		iov, n := d.prepRun(w.iov[:2], w.vhs[:VirtioHdrLen], w.bufs, info, i, w.offset)
		err := writev(int(fd), iov)
		if err != nil && w.first == nil {
			w.first = err
		}
		if err == nil {
			w.done += n
		}
		i += n
	}
	return true
}

// prepRun prepares bufs[i] and the packets after it that continue its TCP
// or UDP flow for one write: it rewrites their headers, fills vh (the run's
// virtio header, VirtioHdrLen bytes of writer scratch), appends the
// payloads of the followers to iov (len(iov) == 2, cap(iov) >= maxRun+2),
// sets iov[0] to vh and iov[1] to the first packet, and returns iov and how
// many packets the write carries. A TCP packet longer than the MTU goes
// alone, as GSO in segments that fit.
func (d *Device) prepRun(iov []unix.Iovec, vh []byte, bufs [][]byte, info []l4Info, i, offset int) ([]unix.Iovec, int) {
	p := bufs[i][offset:]
	a := info[i]
	n := 1
	switch {
	case a.ok && a.tcp && d.mtu > a.hdrLen && len(p) > d.mtu && a.flags&(tcpSYN|tcpRST|tcpURG) == 0:
		// A TCP super-packet longer than the link: a kernel vxlan peer's
		// TSO packet that crossed a virtual underlay (veth) whole, which
		// the socket hands over as one datagram with no segment size.
		// Written as it is the kernel could not forward it (too big:
		// ICMP "need to frag" or Packet Too Big back to the sender, which
		// stalls); as GSO it is cut into segments that fit the link. (No
		// TSO sender makes one with SYN, RST or URG; GSO would copy those
		// into every segment, so such a packet goes as it is.)
		mergeTCPHead(p, a, a.payload, d.mtu-a.hdrLen, false, vh)
		if a.flags&tcpCWR != 0 {
			vh[1] |= gsoECN // CWR on the first segment only, as the kernel's GRO marks it
		}
	case a.ok && a.tcp && a.payload > 0 && a.flags == tcpACK:
		next, total := a.seq+uint32(a.payload), a.payload
		for j := i + 1; j < len(bufs) && n < maxRun; j++ {
			q := bufs[j][offset:]
			if !canAppend(p, a, q, info[j], next, total) {
				break
			}
			bq := info[j]
			iov = append(iov, unix.Iovec{Base: &q[bq.hdrLen]})
			iov[len(iov)-1].SetLen(bq.payload)
			next += uint32(bq.payload)
			total += bq.payload
			n++
			if bq.flags&tcpPSH != 0 || bq.payload < a.payload {
				break // PSH or a short segment ends a run, as in the kernel's GRO
			}
		}
		if n > 1 {
			mergeTCPHead(p, a, total, a.payload, bufs[i+n-1][offset+info[i+n-1].l4+13]&tcpPSH != 0, vh)
		} else {
			partialCsum(p, a, len(p)-a.l4, vh)
		}
	case a.ok && !a.tcp && a.sum != sumAbsent && d.uso && a.payload > 0:
		// Consecutive datagrams of one UDP flow, equal size but for a
		// shorter last one, go in as one USO super-packet.
		total := a.payload
		for j := i + 1; j < len(bufs) && n < maxRun; j++ {
			q := bufs[j][offset:]
			bq := info[j]
			if !canAppendUDP(p, a, q, bq, total) {
				break
			}
			iov = append(iov, unix.Iovec{Base: &q[bq.hdrLen]})
			iov[len(iov)-1].SetLen(bq.payload)
			total += bq.payload
			n++
			if bq.payload < a.payload {
				break
			}
		}
		if n > 1 {
			mergeUDPHead(p, a, total, a.payload, vh)
		} else {
			partialCsum(p, a, len(p)-a.l4, vh)
		}
	case a.ok && a.sum != sumAbsent:
		partialCsum(p, a, len(p)-a.l4, vh)
	default:
		// Not TCP/UDP as inspect understands it, or UDP without a
		// checksum: as it is, the kernel checks what it can.
		clear(vh)
	}
	iov[0] = unix.Iovec{Base: &vh[0]}
	iov[0].SetLen(VirtioHdrLen)
	iov[1] = unix.Iovec{Base: unsafe.SliceData(p)}
	iov[1].SetLen(len(p))
	return iov, n
}

// writev writes one frame given as iovecs, as a raw syscall: the fd is
// non-blocking, so the call never parks, however long the frame's trip
// through the stack. A normal syscall that long (a 64 KiB super-packet
// delivered into the receiving socket inside it) lets the runtime hand this
// thread's P to another thread and take it back after, a context switch
// each way; raw, the loop keeps its thread and P (docs/performance.md,
// "Kept: raw syscalls for the long calls too"). The P is not needed meanwhile:
// the other loop has its own.
func writev(fd int, iov []unix.Iovec) error {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// rawRead is read(2) on the non-blocking TUN fd as a raw syscall: it never
// waits, and a normal syscall would wake the Go runtime's sysmon thread
// when the process was idle, one more wake-up (often of the other CPU) per
// packet of a ping or a request/response (docs/performance.md, "Latency").
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
