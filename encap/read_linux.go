//go:build linux

package encap

import (
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

var groCmsgSpace = unix.CmsgSpace(4) // UDP_GRO carries an int

// reader is ReadBatch's scratch, sized once in init; only the reader
// goroutine touches it.
type reader struct {
	c     *Conn
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []sockaddr

	// GRO only: Conn-owned train buffers, their cmsg space, and the trains
	// received but not yet handed out (messages [msg, got), bytes from off).
	trains [][]byte
	ctrl   []byte
	msg    int
	off    int
	// trainsSplit counts messages that carried more than one datagram;
	// tests read it to see that GRO really coalesced.
	trainsSplit uint64

	// in/out of fn, the recvmmsg callback run by RawConn.Read
	fn    func(fd uintptr) bool
	count int
	got   int
	errno unix.Errno
}

func (r *reader) init(c *Conn) {
	n := c.batch
	if c.gro {
		// A train holds up to 64 datagrams, so a quarter of the batch in
		// trains fills a batch of bulk traffic; small unrelated datagrams
		// arrive at up to this many per syscall.
		n = max(min(4, c.batch), c.batch/4)
		r.trains = make([][]byte, n)
		for i := range r.trains {
			r.trains[i] = make([]byte, MaxDatagram)
		}
		r.ctrl = make([]byte, n*groCmsgSpace)
	}
	r.c = c
	r.msgs = make([]unix.Mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]sockaddr, n)
	for i := range r.msgs {
		h := &r.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		if c.gro {
			r.iovs[i].Base = &r.trains[i][0]
			r.iovs[i].SetLen(MaxDatagram)
			h.Control = &r.ctrl[i*groCmsgSpace]
		}
	}
	r.fn = func(fd uintptr) bool {
		for {
			// Raw: the socket is non-blocking, so recvmmsg never waits,
			// and a normal syscall would wake the runtime's sysmon
			// thread after idle, one more wake-up per ping or request.
			// Unlike a GSO send, a receive only copies out what is
			// queued (at most a batch of GRO trains): no long trip
			// through the stack happens inside it.
			n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.count), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // nothing queued: let the netpoller wait
			}
			r.got, r.errno = int(n), e
			return true
		}
	}
}

// ReadBatch blocks until at least one datagram arrives, then returns up to
// n = min(len(bufs), len(sizes), len(addrs)) of them: datagram i is
// bufs[i][offset:offset+sizes[i]], its sender addrs[i]. The caller owns bufs;
// the Conn writes into them only during the call. Each bufs[i] needs room
// for offset+MaxDatagram bytes; a datagram that does not fit is dropped and
// counted in Truncated.
//
// Without GRO, recvmmsg writes straight into bufs. With GRO, coalesced
// trains are split so that every datagram lands in its own buffer at offset:
// one copy per datagram, the only one on this path. Datagrams that do not fit
// this call's batch are kept and returned first by the next call.
//
// After Close it returns an error matching net.ErrClosed.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort, offset int) (int, error) {
	n := min(len(bufs), len(sizes), len(addrs))
	if n == 0 || offset < 0 {
		return 0, fmt.Errorf("encap: read batch: %d buffers, %d sizes, %d addrs at offset %d: need at least one of each and offset >= 0", len(bufs), len(sizes), len(addrs), offset)
	}
	for i := range n {
		if len(bufs[i]) <= offset {
			return 0, fmt.Errorf("encap: read batch: bufs[%d] has %d bytes: need more than offset %d", i, len(bufs[i]), offset)
		}
	}
	if c.gro {
		return c.readTrains(bufs[:n], sizes, addrs, offset)
	}
	return c.readDirect(bufs[:n], sizes, addrs, offset)
}

// recv runs recvmmsg over the first count messages, blocking until at least
// one arrives.
func (r *reader) recv(count int) error {
	for i := range count {
		h := &r.msgs[i].Hdr
		h.Namelen = uint32(unsafe.Sizeof(sockaddr{}))
		h.Flags = 0
		if h.Control != nil {
			h.SetControllen(groCmsgSpace)
		}
	}
	r.count = count
	if err := r.c.raw.Read(r.fn); err != nil {
		return fmt.Errorf("encap: read batch: %w", err)
	}
	if r.errno != 0 {
		return fmt.Errorf("encap: read batch: recvmmsg: %w", r.errno)
	}
	return nil
}

func (c *Conn) readDirect(bufs [][]byte, sizes []int, addrs []netip.AddrPort, offset int) (int, error) {
	r := &c.rd
	count := min(len(bufs), len(r.msgs))
	for i := range count {
		r.iovs[i].Base = &bufs[i][offset]
		r.iovs[i].SetLen(len(bufs[i]) - offset)
	}
	for {
		if err := r.recv(count); err != nil {
			return 0, err
		}
		out := 0
		for i := range r.got {
			m := &r.msgs[i]
			if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
				c.truncated.Add(1)
				continue
			}
			size := int(m.Len)
			if out != i { // close the gap a truncated datagram left
				if copy(bufs[out][offset:], bufs[i][offset:offset+size]) < size {
					c.truncated.Add(1)
					continue
				}
			}
			sizes[out] = size
			addrs[out] = getSockaddr(&r.names[i])
			out++
		}
		if out > 0 {
			return out, nil
		}
	}
}

func (c *Conn) readTrains(bufs [][]byte, sizes []int, addrs []netip.AddrPort, offset int) (int, error) {
	r := &c.rd
	for {
		if r.msg >= r.got {
			if err := r.recv(len(r.msgs)); err != nil {
				r.got = 0
				return 0, err
			}
			r.msg, r.off = 0, 0
		}
		if out := r.split(bufs, sizes, addrs, offset); out > 0 {
			return out, nil
		}
	}
}

// split copies pending datagrams, one per buffer, until the trains or the
// buffers run out, and returns how many it delivered.
func (r *reader) split(bufs [][]byte, sizes []int, addrs []netip.AddrPort, offset int) int {
	out := 0
	for out < len(bufs) && r.msg < r.got {
		m := &r.msgs[r.msg]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			r.c.truncated.Add(1)
			r.msg, r.off = r.msg+1, 0
			continue
		}
		total := int(m.Len)
		seg := groSegment(r.ctrl[r.msg*groCmsgSpace:], int(m.Hdr.Controllen))
		if seg <= 0 || seg > total {
			seg = total
		}
		if r.off == 0 && seg < total {
			r.trainsSplit++
		}
		from := getSockaddr(&r.names[r.msg])
		train := r.trains[r.msg][:total]
		for out < len(bufs) && (r.off < total || total == 0) {
			end := min(r.off+seg, total)
			if n := copy(bufs[out][offset:], train[r.off:end]); n < end-r.off {
				r.c.truncated.Add(1)
			} else {
				sizes[out] = n
				addrs[out] = from
				out++
			}
			r.off = end
			if total == 0 {
				break // an empty datagram is one datagram
			}
		}
		if r.off >= total {
			r.msg, r.off = r.msg+1, 0
		}
	}
	return out
}

// groSegment returns the segment size from a UDP_GRO cmsg in ctrl[:n], or 0
// if there is none (the message is a single datagram).
func groSegment(ctrl []byte, n int) int {
	hdrLen := unix.CmsgLen(0)
	for n = min(n, len(ctrl)); n >= hdrLen; {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		l := int(h.Len)
		if l < hdrLen || l > n {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= hdrLen+4 {
			return int(*(*int32)(unsafe.Pointer(&ctrl[hdrLen])))
		}
		step := unix.CmsgSpace(l - hdrLen)
		if step >= n {
			return 0
		}
		ctrl, n = ctrl[step:], n-step
	}
	return 0
}
