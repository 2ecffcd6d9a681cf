//go:build linux

package encap

import (
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

var groCmsgSpace = unix.CmsgSpace(4) // UDP_GRO carries an int

// reader is the read side's state, sized once in init; only the reader
// goroutine touches it. Every message of a recvmmsg lands in a Conn-owned
// buffer (bufs): with GRO a whole train of datagrams, without it one
// datagram. Messages received but not yet handed out are [msg, got), the
// current one from byte off on.
type reader struct {
	c     *Conn
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []sockaddr
	bufs  [][]byte // MaxDatagram each, views of one array
	ctrl  []byte   // GRO only: each message's cmsg space
	msg   int
	off   int
	// trainsSplit counts messages that carried more than one datagram;
	// tests read it to see that GRO really coalesced.
	trainsSplit uint64

	views [][]byte // ReadBatch's scratch: the views it copies from

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
		r.ctrl = make([]byte, n*groCmsgSpace)
	}
	back := make([]byte, n*MaxDatagram)
	r.bufs = make([][]byte, n)
	for i := range r.bufs {
		r.bufs[i] = back[i*MaxDatagram : (i+1)*MaxDatagram : (i+1)*MaxDatagram]
	}
	r.c = c
	r.msgs = make([]unix.Mmsghdr, n)
	r.iovs = make([]unix.Iovec, n)
	r.names = make([]sockaddr, n)
	r.views = make([][]byte, c.batch) // ReadBatch's, sized for a full batch up front
	for i := range r.msgs {
		h := &r.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(MaxDatagram)
		if c.gro {
			h.Control = &r.ctrl[i*groCmsgSpace]
		}
	}
	r.fn = func(fd uintptr) bool {
		idled := false
		for {
			// Raw: the socket is non-blocking, so recvmmsg never waits,
			// and a normal syscall would wake the runtime's sysmon
			// thread after idle, one more wake-up per ping or request.
			// Unlike a GSO send, a receive only copies out what is
			// queued (at most a batch of messages): no long trip
			// through the stack happens inside it.
			n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.count), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				// Nothing queued: let the netpoller wait, unless the
				// idle hook (OnIdle) asks for one more try first.
				if idle := r.c.idle; idle != nil && !idled && idle(fd) {
					idled = true
					continue
				}
				return false
			}
			r.got, r.errno = int(n), e
			return true
		}
	}
}

// ReadViews blocks until at least one datagram arrives, then returns up to
// n = min(len(views), len(addrs)) of them without copying: datagram i is
// views[i], sent by addrs[i]. The views are slices of Conn-owned memory
// (with GRO, of the buffer a whole train landed in; without, of the buffer
// recvmmsg wrote the datagram into), valid until the next ReadViews or
// ReadBatch on this Conn, which may overwrite them; until then the caller
// may read and write them in place (the router decaps in place and the TUN
// rewrites inner headers), but must keep no view after. Datagrams of a
// train that do not fit this call's views stay pending and come first from
// the next call, so nothing is lost and order within a flow is kept. A
// message the kernel truncated is dropped and counted in Truncated.
//
// After Close it returns an error matching net.ErrClosed.
func (c *Conn) ReadViews(views [][]byte, addrs []netip.AddrPort) (int, error) {
	n := min(len(views), len(addrs))
	if n == 0 {
		return 0, fmt.Errorf("encap: read views: %d views, %d addrs: need at least one of each", len(views), len(addrs))
	}
	r := &c.rd
	for {
		if r.msg >= r.got {
			if err := r.recv(len(r.msgs)); err != nil {
				r.got = 0
				return 0, err
			}
			r.msg, r.off = 0, 0
		}
		if out := r.take(views[:n], addrs); out > 0 {
			return out, nil
		}
	}
}

// ReadBatch is ReadViews with a copy: it returns up to n =
// min(len(bufs), len(sizes), len(addrs)) datagrams, datagram i copied to
// bufs[i][offset:offset+sizes[i]], its sender addrs[i]. The caller owns
// bufs; the Conn writes into them only during the call. Each bufs[i] needs
// room for offset+MaxDatagram bytes; a datagram that does not fit is
// dropped and counted in Truncated. The router reads with ReadViews; this
// is for callers that want datagrams in their own buffers.
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
	r := &c.rd
	if cap(r.views) < n {
		r.views = make([][]byte, n)
	}
	views := r.views[:n]
	for {
		got, err := c.ReadViews(views, addrs[:n])
		out := 0
		for i := range got {
			if len(views[i]) > len(bufs[out])-offset {
				c.truncated.Add(1)
				continue
			}
			sizes[out] = copy(bufs[out][offset:], views[i])
			addrs[out] = addrs[i]
			out++
		}
		clear(views[:got])
		if out > 0 || err != nil {
			return out, err
		}
	}
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

// take hands out pending datagrams as views, one per slot, until the
// messages or the slots run out, and returns how many it delivered.
func (r *reader) take(views [][]byte, addrs []netip.AddrPort) int {
	out := 0
	for out < len(views) && r.msg < r.got {
		m := &r.msgs[r.msg]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			r.c.truncated.Add(1)
			r.msg, r.off = r.msg+1, 0
			continue
		}
		total := int(m.Len)
		seg := total // without GRO, or a single datagram: one per message
		if r.ctrl != nil {
			if s := groSegment(r.ctrl[r.msg*groCmsgSpace:], int(m.Hdr.Controllen)); s > 0 && s < total {
				seg = s
			}
		}
		if r.off == 0 && seg < total {
			r.trainsSplit++
		}
		from := getSockaddr(&r.names[r.msg])
		train := r.bufs[r.msg][:total]
		for out < len(views) && (r.off < total || total == 0) {
			end := min(r.off+seg, total)
			views[out] = train[r.off:end:end] // capped: an append cannot run into the next datagram
			addrs[out] = from
			out++
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
