package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Batched wraps a TUN opened with IFF_VNET_HDR (as Create opens it) and
// replaces its Read: wireguard's Read returns one packet (or one split
// super-packet) per call, so small packets cost a wake-up and a send each.
// Batched reads every frame the TUN has queued, up to the batch, in one
// wake-up, and splits TSO/USO super-packets itself: segment 0 stays in place,
// later segments get their header and payload copied, and checksums are
// computed once per segment. Write coalesces TCP itself (see gro.go); Close
// and the rest go to the wrapped device.
//
// Concurrency: one goroutine may Read at a time; Write may run concurrently
// from another goroutine (they use the fd independently).
type Batched struct {
	wgtun.Device
	rc    syscall.RawConn
	batch int

	// A super-packet that did not fit the caller's remaining buffers waits
	// here, with the index of its next segment, for the next Read.
	pend     []byte
	pendSegs [][]byte // per-segment views of pendBack for split
	pendBack []byte
	pendSize []int
	pendN    int // segments in pend still to hand out, starting at pendI
	pendI    int
	hdr      []byte
	rdErr    error

	wrc syscall.RawConn // the same fd, for the writing goroutine
	wr  writer
	uso bool // the kernel takes UDP super-packets (GSO_UDP_L4) on write

	// Arguments and results of the RawConn callbacks, which are bound once.
	readFn, writeFn func(uintptr) bool
	rBufs           [][]byte
	rSizes          []int
	rOffset, rGot   int
	rWaiting        bool
	wBufs           [][]byte
	wOffset, wDone  int
	wFirst          error
}

// maxSegmentsFit bounds the segments one super-packet may need; Read stops
// reading new frames when fewer buffers than this are left, so a 64 KiB
// super-packet at a typical MSS is split straight into the caller's buffers.
const maxSegmentsFit = 48

// NewBatched wraps dev. dev must be a TUN from Create (IFF_VNET_HDR set).
func NewBatched(dev wgtun.Device, batch int) (*Batched, error) {
	f := dev.File()
	if f == nil {
		return nil, errors.New("tun: batched reader: device has no file")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: batched reader: %w", err)
	}
	if batch < maxSegmentsFit*2 {
		batch = maxSegmentsFit * 2
	}
	b := &Batched{Device: dev, rc: rc, wrc: rc, batch: batch, hdr: make([]byte, 256)}
	b.readFn, b.writeFn = b.readOnce, b.writeAll
	if o, err := OffloadsOf(dev); err == nil && o.USO {
		b.uso = true
	}
	return b, nil
}

// BatchSize is how many buffers Read wants.
func (b *Batched) BatchSize() int { return b.batch }

// Read fills bufs[i][offset:offset+sizes[i]] with up to len(bufs) packets,
// blocking until at least one is there. offset must be >= VirtioHdrLen and
// every buffer must hold offset+65535 bytes. Packets are valid until the
// next Read.
func (b *Batched) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < VirtioHdrLen {
		return 0, fmt.Errorf("tun: read offset %d: must be at least %d", offset, VirtioHdrLen)
	}
	n := b.drainPending(bufs, sizes, offset)
	if n == len(bufs) {
		return n, nil
	}
	b.rBufs, b.rSizes, b.rOffset, b.rWaiting = bufs[n:], sizes[n:], offset, n == 0
	// rc.Read may fail before calling readOnce (the fd closed): what it
	// left from the previous call must not count again.
	b.rGot, b.rdErr = 0, nil
	err := b.rc.Read(b.readFn)
	got := b.rGot
	b.rBufs, b.rSizes = nil, nil
	n += got
	if err != nil {
		if n > 0 {
			return n, nil
		}
		if errors.Is(err, os.ErrClosed) {
			return 0, os.ErrClosed
		}
		return 0, err
	}
	if b.rdErr != nil && b.rdErr != unix.EAGAIN && n == 0 {
		return 0, b.rdErr
	}
	return n, nil
}

// readOnce is Read's RawConn callback, bound once (a closure per call would
// allocate).
func (b *Batched) readOnce(fd uintptr) bool {
	b.rGot, b.rdErr = b.fill(int(fd), b.rBufs, b.rSizes, b.rOffset)
	// Wait for readability only when nothing at all is there yet.
	return !(b.rGot == 0 && b.rWaiting && b.rdErr == unix.EAGAIN)
}

// fill reads frames until the TUN is empty (EAGAIN), the buffers run low, or
// an error; it returns the packets produced.
func (b *Batched) fill(fd int, bufs [][]byte, sizes []int, offset int) (int, error) {
	i := 0
	for i < len(bufs) {
		if i > 0 && len(bufs)-i < maxSegmentsFit {
			return i, nil
		}
		frame := bufs[i][offset-VirtioHdrLen:]
		m, err := unix.Read(fd, frame)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return i, err
		}
		if m < VirtioHdrLen {
			continue // nothing sane to forward
		}
		h := parseVirtioHdr(frame)
		pkt := frame[VirtioHdrLen:m]
		if h.gsoType == gsoNone {
			if h.flags&virtioNeedsCsum != 0 && finishCsum(pkt, h) != nil {
				continue
			}
			sizes[i] = len(pkt)
			i++
			continue
		}
		segs, err := segments(pkt, h)
		if err != nil {
			continue
		}
		if segs <= len(bufs)-i {
			if _, err := split(pkt, h, bufs[i:], sizes[i:], offset, b.hdr); err == nil {
				i += segs
			}
			continue
		}
		// Too many segments for what is left: park it and hand it out
		// from the next Read.
		b.park(pkt, h, segs, offset)
		return i + b.drainPending(bufs[i:], sizes[i:], offset), nil
	}
	return i, nil
}

// park splits pkt into the pending buffers: views of one backing array,
// each just large enough for one segment, so that a super-packet of many
// tiny segments (MSS 48 gives ~1,300) does not pin 64 KiB per segment.
func (b *Batched) park(pkt []byte, h virtioHdr, segs, offset int) {
	_, hdrLen, err := gsoHeaders(pkt, h)
	if err != nil {
		b.pendN = 0
		return
	}
	stride := offset + hdrLen + int(h.gsoSize)
	if need := segs * stride; cap(b.pendBack) < need {
		b.pendBack = make([]byte, need)
	}
	b.pendSegs = b.pendSegs[:0]
	for j := 0; j < segs; j++ {
		b.pendSegs = append(b.pendSegs, b.pendBack[j*stride:(j+1)*stride:(j+1)*stride])
	}
	if len(b.pendSize) < segs {
		b.pendSize = make([]int, segs)
	}
	if cap(b.pend) < offset+len(pkt) {
		b.pend = make([]byte, offset+65535)
	}
	b.pend = b.pend[:offset+len(pkt)]
	copy(b.pend[offset:], pkt)
	// Segment 0 is split in place in pend; later ones land in pendSegs.
	n, err := split(b.pend[offset:], h, b.pendSegs, b.pendSize, offset, b.hdr)
	if err != nil {
		b.pendN = 0
		return
	}
	b.pendN, b.pendI = n, 0
}

// drainPending copies parked segments into bufs.
func (b *Batched) drainPending(bufs [][]byte, sizes []int, offset int) int {
	i := 0
	for b.pendN > 0 && i < len(bufs) {
		j := b.pendI
		src := b.pendSegs[j][offset : offset+b.pendSize[j]]
		if j == 0 {
			src = b.pend[offset : offset+b.pendSize[0]]
		}
		sizes[i] = copy(bufs[i][offset:], src)
		i++
		b.pendI++
		b.pendN--
	}
	return i
}

// maxRun bounds the segments one coalesced write carries.
const maxRun = 64

// writer is Write's scratch, allocated once.
type writer struct {
	iov  [maxRun + 1]unix.Iovec
	info []l4Info
}

// Write hands packets bufs[i][offset:] to the kernel: runs of consecutive
// segments of one TCP flow as one GSO super-packet (one writev, payloads as
// iovecs), every other TCP/UDP packet with a partial checksum, anything else
// as it is. offset must be >= VirtioHdrLen: the virtio header is written into
// the headroom. Packet headers are rewritten in place. It returns how many
// packets were handed over and the first error; a packet the kernel refuses
// does not stop the rest.
func (b *Batched) Write(bufs [][]byte, offset int) (int, error) {
	if offset < VirtioHdrLen {
		return 0, fmt.Errorf("tun: write offset %d: must be at least %d", offset, VirtioHdrLen)
	}
	w := &b.wr
	if cap(w.info) < len(bufs) {
		w.info = make([]l4Info, len(bufs))
	}
	info := w.info[:len(bufs)]
	for i := range bufs {
		info[i] = inspect(bufs[i][offset:])
	}
	b.wBufs, b.wOffset, b.wDone, b.wFirst = bufs, offset, 0, nil
	err := b.wrc.Write(b.writeFn)
	done, first := b.wDone, b.wFirst
	b.wBufs = nil
	if err != nil {
		return done, err
	}
	if first != nil {
		return done, fmt.Errorf("tun: write: %w", first)
	}
	return done, nil
}

// writeAll is Write's RawConn callback, bound once.
func (b *Batched) writeAll(fd uintptr) bool {
	info := b.wr.info[:len(b.wBufs)]
	for i := 0; i < len(b.wBufs); {
		n, err := b.writeRun(int(fd), b.wBufs, info, i, b.wOffset)
		if err != nil && b.wFirst == nil {
			b.wFirst = err
		}
		if err == nil {
			b.wDone += n
		}
		i += n
	}
	return true
}

// writeRun writes bufs[i] and the packets after it that continue its TCP
// flow, and returns how many it consumed.
func (b *Batched) writeRun(fd int, bufs [][]byte, info []l4Info, i, offset int) (int, error) {
	w := &b.wr
	p := bufs[i][offset:]
	a := info[i]
	vh := bufs[i][offset-VirtioHdrLen : offset]
	iov := w.iov[:1]
	n := 1
	switch {
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
			headOf(p, a, total, a.payload, bufs[i+n-1][offset+info[i+n-1].l4+13]&tcpPSH != 0, vh)
		} else {
			partialCsum(p, a, len(p)-a.l4, vh)
		}
	case a.ok && !a.tcp && b.uso && a.payload > 0:
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
			headOfUDP(p, a, total, a.payload, vh)
		} else {
			partialCsum(p, a, len(p)-a.l4, vh)
		}
	case a.ok && (a.tcp || binary.BigEndian.Uint16(p[a.l4+6:]) != 0):
		partialCsum(p, a, len(p)-a.l4, vh)
	default:
		clear(vh)
	}
	iov[0] = unix.Iovec{Base: &vh[0]}
	iov[0].SetLen(VirtioHdrLen + len(p))
	for {
		_, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return n, e
		}
		return n, nil
	}
}
