package routertest

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// Sink is a Device and a Conn in one that reads nothing (reads block until
// Close) and counts what is written, for benchmarks that measure the engine
// and not the fakes' copying.
type Sink struct {
	batch   int
	closed  chan struct{}
	once    atomic.Bool
	Packets atomic.Uint64 // packets written
	Bytes   atomic.Uint64 // their bytes (after any offset)
}

// NewSink returns a sink with the given batch size.
func NewSink(batch int) *Sink { return &Sink{batch: batch, closed: make(chan struct{})} }

func (s *Sink) BatchSize() int { return s.batch }

func (s *Sink) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	<-s.closed
	return 0, net.ErrClosed
}

func (s *Sink) ReadViews(views [][]byte, addrs []netip.AddrPort) (int, error) {
	<-s.closed
	return 0, net.ErrClosed
}

func (s *Sink) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		s.Bytes.Add(uint64(len(b) - offset))
	}
	s.Packets.Add(uint64(len(bufs)))
	return len(bufs), nil
}

func (s *Sink) WriteBatch(pkts [][]byte, addrs []netip.AddrPort) error {
	for _, p := range pkts {
		s.Bytes.Add(uint64(len(p)))
	}
	s.Packets.Add(uint64(len(pkts)))
	return nil
}

// Close unblocks reads; safe twice.
func (s *Sink) Close() error {
	if s.once.CompareAndSwap(false, true) {
		close(s.closed)
	}
	return nil
}
