//go:build linux

package encap

import (
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	maxGSOSegments = 64             // UDP_MAX_SEGMENTS on older kernels (newer allow 128)
	maxGSOBytes    = 65535 - 20 - 8 // payload of one IPv4 UDP datagram before segmentation
)

var gsoCmsgSpace = unix.CmsgSpace(2) // UDP_SEGMENT carries a uint16

// writer is WriteBatch's scratch, sized once in init; only the writer
// goroutine touches it.
type writer struct {
	c     *Conn
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec // one per packet of the batch, in packet order
	names []sockaddr
	ctrl  []byte // per message: a UDP_SEGMENT cmsg, header prefilled
	first []int  // index in pkts of each message's first packet

	// Packets before plainUntil (an index into the current WriteBatch's
	// pkts) go out without GSO: a GSO message the kernel refused is sent
	// again that way, exactly once, whatever the holds say.
	plainUntil int

	// holds are the destinations whose GSO messages the kernel refused
	// lately (gsohold_linux.go); now is the writer clock (ns since epoch),
	// read at most once per WriteBatch and only while a hold is live.
	holds holds
	epoch time.Time
	now   int64

	// in/out of fn, the sendmmsg callback run by RawConn.Write
	fn           func(fd uintptr) bool
	start, count int
	sent         int
	errno        unix.Errno
}

func (w *writer) init(c *Conn) {
	n := c.batch
	w.c = c
	w.msgs = make([]unix.Mmsghdr, n)
	w.iovs = make([]unix.Iovec, n)
	w.names = make([]sockaddr, n)
	w.ctrl = make([]byte, n*gsoCmsgSpace)
	w.first = make([]int, n)
	w.holds.init()
	w.epoch = time.Now()
	for i := range n {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&w.ctrl[i*gsoCmsgSpace]))
		h.Level = unix.SOL_UDP
		h.Type = unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
	}
	w.fn = func(fd uintptr) bool {
		for {
			// Raw: the socket is non-blocking, so sendmmsg never parks.
			// A normal syscall wakes the runtime's sysmon thread after
			// idle (one more wake-up per ping or request), and during a
			// long GSO send (over a veth the receiver's whole stack runs
			// inside it) lets the runtime hand this thread's P away and
			// back, a context switch each way (docs/performance.md,
			// "Kept: raw syscalls for the long calls too").
			n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.msgs[w.start])), uintptr(w.count), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // socket buffer full: let the netpoller wait for room
			}
			w.sent, w.errno = int(n), e
			return true
		}
	}
}

// WriteBatch sends every pkts[i] to addrs[i] (len(addrs) >= len(pkts)); it
// only reads the packets and holds none after it returns.
//
// Consecutive packets to the same address with equal size (the last of a
// run may be shorter) go out as one GSO message whose iovecs point at the
// packets; runs, and single datagrams, are batched with sendmmsg.
//
// Every packet is attempted once, in order. A packet the kernel refuses
// (say ENETUNREACH for its address), or whose address the socket cannot
// reach (IPv6 on an IPv4 socket), is dropped: its error is kept and the rest
// still go out. The first such error is returned; nil means every packet
// was handed to the kernel. If the Conn is closed, the rest are not sent
// and the error matches net.ErrClosed.
//
// A refused GSO message is no error: its packets are sent again as plain
// datagrams, and its destination alone is held back (runs of that segment
// size or larger go out plain) for a while; see refused. Only a kernel that
// would refuse every GSO message turns GSO off for the whole Conn.
func (c *Conn) WriteBatch(pkts [][]byte, addrs []netip.AddrPort) error {
	if len(addrs) < len(pkts) {
		return fmt.Errorf("encap: write batch: addrs has %d entries for %d packets: need one per packet", len(addrs), len(pkts))
	}
	w := &c.wr
	w.plainUntil = 0
	if w.holds.live != 0 {
		w.now = int64(time.Since(w.epoch))
		if w.now >= w.holds.live {
			w.holds.live = 0 // every hold has run out: no more lookups
		}
	}
	var first error
	for i := 0; i < len(pkts); {
		nm, next := w.build(pkts, addrs, i, &first)
		switch r := w.send(nm, &first); {
		case r == sendClosed:
			return first
		case r >= 0: // GSO refused at message r: send its packets plain
			next = w.first[r]
			w.plainUntil = next + int(w.msgs[r].Hdr.Iovlen)
		}
		i = next
	}
	return first
}

// build fills up to one batch of messages from pkts[i:], returning the
// number of messages and the index of the first packet not included.
func (w *writer) build(pkts [][]byte, addrs []netip.AddrPort, i int, first *error) (nm, next int) {
	c := w.c
	gso := c.gso.Load()
	niov := 0
	for i < len(pkts) && nm < len(w.msgs) && niov < len(w.iovs) {
		a := addrs[i]
		nameLen := putSockaddr(&w.names[nm], c.nameFamily(), a)
		if nameLen == 0 {
			keepFirst(first, fmt.Errorf("encap: write batch: packet %d: address %s: not reachable from the %s socket", i, a, c.local))
			i++
			continue
		}
		size := len(pkts[i])
		j, total := i+1, size
		if gso && size > 0 && i >= w.plainUntil && j < len(pkts) && addrs[j] == a &&
			(w.holds.live == 0 || size <= w.holds.limit(getSockaddr(&w.names[nm]), w.now)) {
			for j < len(pkts) && j-i < maxGSOSegments && niov+j-i < len(w.iovs) && addrs[j] == a {
				s := len(pkts[j])
				if s == 0 || s > size || total+s > maxGSOBytes {
					break
				}
				total += s
				j++
				if s < size {
					break // a shorter segment ends the run
				}
			}
		}
		for k := i; k < j; k++ {
			iov := &w.iovs[niov+k-i]
			iov.Base = nil
			if len(pkts[k]) > 0 {
				iov.Base = &pkts[k][0]
			}
			iov.SetLen(len(pkts[k]))
		}
		h := &w.msgs[nm].Hdr
		h.Name = (*byte)(unsafe.Pointer(&w.names[nm]))
		h.Namelen = nameLen
		h.Iov = &w.iovs[niov]
		h.SetIovlen(j - i)
		h.Control, h.Controllen = nil, 0
		if j-i > 1 {
			ctrl := w.ctrl[nm*gsoCmsgSpace : (nm+1)*gsoCmsgSpace]
			*(*uint16)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)])) = uint16(size)
			h.Control = &ctrl[0]
			h.SetControllen(gsoCmsgSpace)
		}
		w.first[nm] = i
		nm++
		niov += j - i
		i = j
	}
	return nm, i
}

// sendClosed and sendDone are send's results besides a message index.
const (
	sendDone   = -1
	sendClosed = -2
)

// send hands messages [0, nm) to the kernel. It returns sendDone, sendClosed,
// or the index of a GSO message the kernel refused (the messages before it
// were handled; refused has recorded it).
func (w *writer) send(nm int, first *error) int {
	for w.start = 0; w.start < nm; {
		w.count = nm - w.start
		if err := w.c.raw.Write(w.fn); err != nil {
			keepFirst(first, fmt.Errorf("encap: write batch: %w", err))
			return sendClosed
		}
		if w.errno == 0 {
			gso := 0
			for _, m := range w.msgs[w.start : w.start+w.sent] {
				if m.Hdr.Control != nil {
					gso++
				}
			}
			w.c.gsoSent.Add(uint64(gso))
			w.start += w.sent
			continue
		}
		// sendmmsg reports an error only for the first message it tried.
		if w.msgs[w.start].Hdr.Control != nil && gsoRefused(w.errno) {
			w.refused(w.start)
			return w.start
		}
		keepFirst(first, fmt.Errorf("encap: write batch: packet %d to %s: %w",
			w.first[w.start], getSockaddr(&w.names[w.start]), w.errno))
		w.start++
	}
	return sendDone
}

// gsoRefused tells the errors with which a kernel turns down UDP_SEGMENT.
func gsoRefused(e unix.Errno) bool {
	switch e {
	case unix.EIO, unix.EINVAL, unix.EMSGSIZE, unix.EOPNOTSUPP, unix.ENOPROTOOPT:
		return true
	}
	return false
}

// refused records that the kernel turned down GSO message r (w.errno):
// either GSO goes off for the Conn, or r's destination is held back.
func (w *writer) refused(r int) {
	c := w.c
	c.gsoRefusals.Add(1)
	seg := int(*(*uint16)(unsafe.Pointer(&w.ctrl[r*gsoCmsgSpace+unix.CmsgLen(0)])))
	dst := getSockaddr(&w.names[r])
	global, limit := refusalScope(w.errno, seg, c.routeFamily(dst))
	if global {
		c.disableGSO(w.errno, seg)
		return
	}
	w.now = int64(time.Since(w.epoch))
	if w.holds.refuse(dst, limit, w.now) {
		if ce := c.log.Check(zap.InfoLevel, "kernel refused udp gso toward one peer; sending it plain datagrams for a while"); ce != nil {
			ce.Write(zap.Error(w.errno), zap.Stringer("peer", dst), zap.Int("segment", seg), zap.Int("gso_limit", limit))
		}
	}
}

// refusalScope sorts a GSO message of seg-byte segments that the kernel
// refused with e. Linux refuses in udp_send_skb (net/ipv4/udp.c, and
// udp_v6_send_skb alike):
//   - EMSGSIZE: headers plus one segment exceed the route's MTU (the
//     device MTU for felt's IPv4 socket, see setSockopts). Kernels before
//     the 2025 fix "udp: gso: do not drop small packets when PMTU reduces"
//     answer EINVAL for the same thing.
//   - EINVAL: also more segments than UDP_MAX_SEGMENTS (64 on the oldest
//     kernels, felt's own cap) or a socket with SO_NO_CHECK.
//   - EIO: the route goes through IPsec (xfrm); on older kernels also a
//     device without checksum offload. That route only.
//   - EOPNOTSUPP, ENOPROTOOPT: no UDP_SEGMENT at all.
//
// An MTU refusal is about one route, so it holds back that destination's
// runs of seg bytes or more (limit seg-1); an IO refusal holds back all its
// runs (limit 0). A size refusal of segments so small that they fit the
// smallest MTU the family allows (68 bytes for IPv4, 1280 for IPv6) cannot
// be about a route: then, as for a kernel without UDP_SEGMENT, GSO goes
// off for the whole Conn (global).
func refusalScope(e unix.Errno, seg, family int) (global bool, limit int) {
	switch e {
	case unix.EOPNOTSUPP, unix.ENOPROTOOPT:
		return true, 0
	case unix.EIO:
		return false, 0
	}
	minMTU, hdr := 68, 20+8
	if family == unix.AF_INET6 {
		minMTU, hdr = 1280, 40+8
	}
	if seg+hdr <= minMTU {
		return true, 0
	}
	return false, seg - 1
}

func (c *Conn) disableGSO(e unix.Errno, seg int) {
	if c.gso.CompareAndSwap(true, false) {
		c.log.Warn("kernel refuses udp gso on this socket (no UDP_SEGMENT, or a run that fits every MTU refused); sending plain datagrams from now on",
			zap.Error(e), zap.Int("segment", seg), zap.Stringer("local", c.local))
	}
}

func keepFirst(first *error, err error) {
	if *first == nil {
		*first = err
	}
}
