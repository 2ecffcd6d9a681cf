package routertest

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// queue is a bounded FIFO of packets. push copies into a slot's buffer,
// which the slot keeps and reuses, so a warmed-up queue allocates nothing.
type queue struct {
	mu    sync.Mutex
	slots []slot
	head  int // oldest packet
	n     int // packets queued

	ready     chan struct{} // holds a token while packets may be queued
	closed    chan struct{}
	closeOnce sync.Once
	dropped   atomic.Uint64 // packets refused because the queue was full
	truncated atomic.Uint64 // packets that did not fit the reader's buffer
}

type slot struct {
	buf  []byte
	addr netip.AddrPort
}

func newQueue(size int) *queue {
	return &queue{
		slots:  make([]slot, size),
		ready:  make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// pushLocked copies p into the next slot; q.mu must be held.
func (q *queue) pushLocked(p []byte, addr netip.AddrPort) {
	if q.n == len(q.slots) {
		q.dropped.Add(1)
		return
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	s.buf = append(s.buf[:0], p...)
	s.addr = addr
	q.n++
}

// push enqueues copies of pkts, all at once so one reader call can see the
// whole group; from is recorded as every packet's source.
func (q *queue) push(pkts [][]byte, from netip.AddrPort) error {
	if q.isClosed() {
		return net.ErrClosed
	}
	q.mu.Lock()
	for _, p := range pkts {
		q.pushLocked(p, from)
	}
	q.mu.Unlock()
	q.signal()
	return nil
}

// pop blocks until packets are queued or the queue is closed, then copies up
// to len(bufs) of them to bufs[i][offset:] (sizes[i], and addrs[i] when addrs
// is not nil). A packet larger than its buffer is counted and skipped.
func (q *queue) pop(bufs [][]byte, sizes []int, addrs []netip.AddrPort, offset int) (int, error) {
	for {
		if q.isClosed() {
			return 0, net.ErrClosed
		}
		q.mu.Lock()
		k := 0
		for q.n > 0 && k < len(bufs) {
			s := &q.slots[q.head]
			q.head = (q.head + 1) % len(q.slots)
			q.n--
			if offset+len(s.buf) > len(bufs[k]) {
				q.truncated.Add(1)
				continue
			}
			sizes[k] = copy(bufs[k][offset:], s.buf)
			if addrs != nil {
				addrs[k] = s.addr
			}
			k++
		}
		if q.settle(k) {
			return k, nil
		}
	}
}

// popTrain is pop for views: it blocks the same way, then appends up to
// len(views) packets to train, back to back, and points views[i] at each
// (capacity capped at its end). It returns the grown train and how many
// packets; the views stay valid only until the next call. train's array is
// reused while it is large enough, so a warmed-up reader allocates nothing.
func (q *queue) popTrain(train []byte, views [][]byte, addrs []netip.AddrPort) ([]byte, int, error) {
	for {
		if q.isClosed() {
			return train, 0, net.ErrClosed
		}
		q.mu.Lock()
		need := 0
		for j := 0; j < min(q.n, len(views)); j++ {
			need += len(q.slots[(q.head+j)%len(q.slots)].buf)
		}
		if cap(train) < need {
			train = make([]byte, 0, 2*need)
		}
		k := 0
		for q.n > 0 && k < len(views) {
			s := &q.slots[q.head]
			q.head = (q.head + 1) % len(q.slots)
			q.n--
			start := len(train)
			train = append(train, s.buf...)
			views[k] = train[start:len(train):len(train)]
			addrs[k] = s.addr
			k++
		}
		if q.settle(k) {
			return train, k, nil
		}
	}
}

// settle ends one round of a pop under q.mu: it unlocks, wakes the next
// reader if packets are left, and, when this round took none (k == 0),
// waits for more or for Close. It reports whether the pop is done.
func (q *queue) settle(k int) bool {
	left := q.n
	q.mu.Unlock()
	if left > 0 {
		q.signal()
	}
	if k > 0 {
		return true
	}
	select {
	case <-q.ready:
	case <-q.closed:
	}
	return false
}

func (q *queue) close() {
	q.closeOnce.Do(func() { close(q.closed) })
}

var zeroAddr netip.AddrPort

// next returns a copy of the oldest packet, waiting up to timeout.
func next(q *queue, timeout time.Duration) ([]byte, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if q.isClosed() {
			return nil, net.ErrClosed
		}
		q.mu.Lock()
		if q.n > 0 {
			p := append([]byte(nil), q.slots[q.head].buf...)
			q.head = (q.head + 1) % len(q.slots)
			q.n--
			left := q.n
			q.mu.Unlock()
			if left > 0 {
				q.signal()
			}
			return p, nil
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-q.closed:
		case <-timer.C:
			return nil, ErrTimeout
		}
	}
}
