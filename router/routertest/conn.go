package routertest

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Network joins Conns like an IP network: a datagram written to an
// AddrPort arrives at the Conn listening there, with the writer's address
// as its source. Datagrams to nobody, or to a full queue, are lost (as UDP
// would lose them) and counted.
type Network struct {
	mu    sync.RWMutex
	conns map[netip.AddrPort]*Conn
	lost  atomic.Uint64
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{conns: make(map[netip.AddrPort]*Conn)} }

// Listen attaches a Conn at addr whose reads return up to batch
// datagrams and whose receive queue holds queueLen.
func (n *Network) Listen(addr netip.AddrPort, batch, queueLen int) (*Conn, error) {
	if !addr.IsValid() {
		return nil, fmt.Errorf("routertest: listen address %q: must be a valid IP:port", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.conns[addr]; ok {
		return nil, fmt.Errorf("routertest: listen address %s: already in use", addr)
	}
	c := &Conn{net: n, local: addr, batch: batch, in: newQueue(queueLen)}
	n.conns[addr] = c
	return c, nil
}

// Lost is the number of datagrams sent to no listener.
func (n *Network) Lost() uint64 { return n.lost.Load() }

// Conn is one endpoint of a Network. Safe for concurrent use.
type Conn struct {
	net   *Network
	local netip.AddrPort
	batch int
	in    *queue
	sent  atomic.Uint64
	calls atomic.Uint64
	fail  atomic.Pointer[error]

	train []byte // ReadViews' array, the reader's alone

	// OnWrite, if set before traffic starts, sees every WriteBatch call's
	// arguments before delivery (borrowed: copy what you keep).
	OnWrite func(pkts [][]byte, addrs []netip.AddrPort)
}

// FailWrites makes every WriteBatch return err (sending nothing) until
// called with nil.
func (c *Conn) FailWrites(err error) { setErr(&c.fail, err) }

// LocalAddr is the address the Conn listens on.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// BatchSize is the most datagrams one read returns.
func (c *Conn) BatchSize() int { return c.batch }

// WriteBatch delivers a copy of pkts[i] to the Conn at addrs[i].
func (c *Conn) WriteBatch(pkts [][]byte, addrs []netip.AddrPort) error {
	if len(pkts) != len(addrs) {
		return fmt.Errorf("routertest: write batch: %d packets but %d addresses", len(pkts), len(addrs))
	}
	if c.in.isClosed() {
		return net.ErrClosed
	}
	if e := c.fail.Load(); e != nil {
		return *e
	}
	if c.OnWrite != nil {
		c.OnWrite(pkts, addrs)
	}
	c.calls.Add(1)
	c.net.mu.RLock()
	defer c.net.mu.RUnlock()
	for i := 0; i < len(pkts); {
		// deliver runs of one destination under one lock, as one GSO send would
		j := i + 1
		for j < len(pkts) && addrs[j] == addrs[i] {
			j++
		}
		dst := c.net.conns[addrs[i]]
		if dst == nil || dst.in.push(pkts[i:j], c.local) != nil {
			c.net.lost.Add(uint64(j - i))
		}
		i = j
	}
	c.sent.Add(uint64(len(pkts)))
	return nil
}

// Deliver queues copies of pkts as if from had sent them, for tests that forge
// traffic from addresses no Conn has.
func (c *Conn) Deliver(from netip.AddrPort, pkts ...[]byte) error { return c.in.push(pkts, from) }

// ReadBatch copies queued datagrams into bufs[i][offset:], blocking until
// there are some or the Conn is closed (then net.ErrClosed).
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort, offset int) (int, error) {
	if len(bufs) > c.batch {
		bufs = bufs[:c.batch]
	}
	return c.in.pop(bufs, sizes, addrs, offset)
}

// ReadViews is encap.Conn's ReadViews: it blocks like ReadBatch, then
// returns queued datagrams as views[i], slices of one array the Conn owns
// (copies of what was sent, back to back with no gap, as a GRO train's
// datagrams lie, so a Device that wrote in front of a packet would damage
// the one before it), valid until the next ReadViews. Only one goroutine
// may read at a time. A warmed-up Conn allocates nothing.
func (c *Conn) ReadViews(views [][]byte, addrs []netip.AddrPort) (int, error) {
	n := min(len(views), len(addrs), c.batch)
	if n == 0 {
		return 0, fmt.Errorf("routertest: read views: %d views, %d addrs: need at least one of each", len(views), len(addrs))
	}
	var k int
	var err error
	c.train, k, err = c.in.popTrain(c.train[:0], views[:n], addrs)
	return k, err
}

// Sent is the number of datagrams written; Calls the WriteBatch calls.
func (c *Conn) Sent() uint64  { return c.sent.Load() }
func (c *Conn) Calls() uint64 { return c.calls.Load() }

// Dropped is the number of datagrams lost because the queue was full.
func (c *Conn) Dropped() uint64 { return c.in.dropped.Load() }

// Close detaches the Conn from the network; safe twice.
func (c *Conn) Close() error {
	c.in.close()
	c.net.mu.Lock()
	if c.net.conns[c.local] == c {
		delete(c.net.conns, c.local)
	}
	c.net.mu.Unlock()
	return nil
}
