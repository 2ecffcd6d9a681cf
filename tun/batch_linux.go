package tun

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Batched wraps a TUN opened with IFF_VNET_HDR (as Create opens it) and
// replaces its Read: wireguard's Read returns one packet (or one split
// super-packet) per call, so small packets cost a wake-up and a send each.
// Batched reads every frame the TUN has queued, up to the batch, in one
// wake-up, and splits TSO/USO super-packets itself: segment 0 stays in place,
// later segments get their header and payload copied, and checksums are
// computed once per segment. Write, Close and the rest go to the wrapped
// device (whose Write coalesces with GRO).
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
	pendSegs [][]byte // per-segment scratch views for split, reused
	pendSize []int
	pendN    int // segments in pend still to hand out, starting at pendI
	pendI    int
	hdr      []byte
	rdErr    error
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
	return &Batched{Device: dev, rc: rc, batch: batch, hdr: make([]byte, 256)}, nil
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
	var got int
	err := b.rc.Read(func(fd uintptr) bool {
		got, b.rdErr = b.fill(int(fd), bufs[n:], sizes[n:], offset)
		// Wait for readability only when nothing at all is there yet.
		return !(got == 0 && n == 0 && b.rdErr == unix.EAGAIN)
	})
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

// park splits pkt into the pending buffers.
func (b *Batched) park(pkt []byte, h virtioHdr, segs, offset int) {
	for len(b.pendSegs) < segs {
		b.pendSegs = append(b.pendSegs, make([]byte, offset+65535))
		b.pendSize = append(b.pendSize, 0)
	}
	if cap(b.pend) < offset+len(pkt) {
		b.pend = make([]byte, offset+65535)
	}
	b.pend = b.pend[:offset+len(pkt)]
	copy(b.pend[offset:], pkt)
	// Segment 0 is split in place in pend; later ones land in pendSegs.
	n, err := split(b.pend[offset:], h, b.pendSegs[:segs], b.pendSize, offset, b.hdr)
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
