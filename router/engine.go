package router

// Concurrency shape: Run starts exactly two goroutines per queue (one
// queue, Device and Conn, unless Config.Queues adds more: queues.go) and no
// others.
//
//   outbound: Device.Read → per packet: lookup, encap in place → group per peer → Conn.WriteBatch
//   inbound:  Conn.ReadViews → per datagram: sender check, decap in place, source/destination checks → Device.Write
//
// Each loop runs a batch to completion on its own goroutine with its own
// scratch (allocated once in New: the outbound loop's read buffers; the
// inbound loop reads views of the Conn's); there are no channels between stages and
// no locks on the packet path. The peer table is an immutable snapshot in an
// atomic.Pointer: SetPeers (any goroutine) publishes a new one and each loop
// loads it once per batch; the own subnet (SetLocal) and the framing
// (SetFramer) are published and loaded the same way. Stats are atomics
// added once per batch. The first fatal error of any loop, a cancelled
// context, or Close closes every Device and Conn, which unblocks the other
// loops' reads; Run returns after all goroutines have ended.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/tun/vnet"
)

// bufSize is one packet buffer: headroom plus the largest IP packet.
const bufSize = encap.Headroom + 65535

// maxReadErrors is how many read errors in a row a loop tolerates before it
// gives up: transient errors (a TUN super-packet too large to split, an
// ICMP error surfacing on the socket) recover; a broken fd does not.
const maxReadErrors = 100

// ErrClosed is returned by Run when the engine was closed before Run.
var ErrClosed = errors.New("router: engine closed")

// Config is what the engine needs; the agent fills it from the lease.
type Config struct {
	Device    Device       // TUN side (queue 0); owned by the engine from New on
	Conn      Conn         // UDP side (queue 0); owned by the engine from New on
	Framer    Framer       // the wire format shared with the peers; SetFramer replaces it
	Network   netip.Prefix // the pool (flannel's Network)
	SubnetLen int          // length of every lease in the pool
	Local     netip.Prefix // our own leased subnet

	// The IPv6 pool and own IPv6 subnet of a dual-stack or IPv6-only node
	// (flannel's IPv6Network, IPv6SubnetLen); zero without IPv6. An
	// IPv6-only node leaves Network, SubnetLen and Local zero.
	IPv6Network   netip.Prefix
	IPv6SubnetLen int
	Local6        netip.Prefix

	// Now is the clock for drop-log rate limiting; nil means time.Now.
	Now func() time.Time
	// LogEvery is the shortest gap between two log lines of one drop
	// reason; zero means 5s.
	LogEvery time.Duration

	// Queues are further Device/Conn pairs (queues 1..), each with a loop
	// pair of its own; Device and Conn are queue 0. See queues.go.
	Queues []Queue

	// Linger is how long an inbound loop that wrote to the TUN and found
	// its socket empty polls for the reply before it parks (linger.go);
	// 0 turns it off, at most MaxLinger. It holds the loop's P while it
	// polls: give the process a P per loop.
	Linger time.Duration
}

func (c *Config) validate() error {
	switch {
	case c.Device == nil:
		return errors.New("router: config Device: must not be nil")
	case c.Conn == nil:
		return errors.New("router: config Conn: must not be nil")
	case c.Framer == nil:
		return errors.New("router: config Framer: must not be nil")
	case checkFramer("config Framer", c.Framer) != nil:
		return checkFramer("config Framer", c.Framer)
	case !c.Network.IsValid() && !c.IPv6Network.IsValid():
		return fmt.Errorf("router: config Network %q: must be a valid prefix", c.Network)
	case c.Network.IsValid() && (c.SubnetLen < c.Network.Bits() || c.SubnetLen > c.Network.Addr().BitLen()):
		return fmt.Errorf("router: config SubnetLen %d: must lie between the Network's length %d and %d",
			c.SubnetLen, c.Network.Bits(), c.Network.Addr().BitLen())
	case c.Network.IsValid() && !c.Local.IsValid():
		return fmt.Errorf("router: config Local %q: must be a valid prefix", c.Local)
	case c.validate6() != nil:
		return c.validate6()
	case c.Device.BatchSize() < 1:
		return fmt.Errorf("router: config Device batch size %d: must be at least 1", c.Device.BatchSize())
	case c.Conn.BatchSize() < 1:
		return fmt.Errorf("router: config Conn batch size %d: must be at least 1", c.Conn.BatchSize())
	case c.LogEvery < 0:
		return fmt.Errorf("router: config LogEvery %v: must not be negative", c.LogEvery)
	case c.Linger < 0 || c.Linger > MaxLinger:
		return fmt.Errorf("router: config Linger %v: must lie between 0 and %v (a lingering loop holds its P, and Close waits for a wait to end)", c.Linger, MaxLinger)
	}
	return c.validateQueues()
}

// checkFramer reports why f's overhead does not fit the outbound loop's
// headroom; what names f in the error. Encap writes the framing where the
// TUN read put the virtio header, which Read is done with by then; the
// bound keeps both apart all the same (vxlan's 22 bytes fit exactly), so
// neither step has to know the order of the other.
func checkFramer(what string, f Framer) error {
	if f.Overhead() < 0 || f.Overhead() > encap.Headroom-vnet.HdrLen {
		return fmt.Errorf("router: %s overhead %d: must lie between 0 and %d (headroom minus the virtio header)",
			what, f.Overhead(), encap.Headroom-vnet.HdrLen)
	}
	return nil
}

// Engine forwards packets between the Device and the Conn.
type Engine struct {
	cfg    Config
	log    *zap.Logger
	table  atomic.Pointer[Table]
	local  atomic.Pointer[locals] // own subnets; change when the lease is re-acquired
	framer atomic.Pointer[Framer] // the framing; changes with a new VtepMAC
	stats  Stats
	drops  dropLog

	out  *outbound // queue 0's loops
	in   *inbound
	more []queue // Config.Queues' loops

	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New checks cfg and allocates both loops' scratch. The engine starts with
// an empty peer table. On error the Device and Conn are left to the caller.
func New(cfg Config, log *zap.Logger) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.Local = cfg.Local.Masked()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogEvery == 0 {
		cfg.LogEvery = 5 * time.Second
	}
	e := &Engine{cfg: cfg, log: log}
	e.drops = dropLog{log: log, now: cfg.Now, every: cfg.LogEvery, stats: &e.stats}
	e.table.Store(NewDualTable(cfg.Network, cfg.SubnetLen, cfg.IPv6Network, cfg.IPv6SubnetLen, nil))
	e.local.Store(&locals{v4: cfg.Local, v6: cfg.Local6.Masked()})
	fr := cfg.Framer
	e.framer.Store(&fr)
	e.out, e.in = newOutbound(e, cfg.Device, cfg.Conn), newInbound(e, cfg.Device, cfg.Conn)
	e.newQueues()
	return e, nil
}

// SetPeers builds a table from peers and publishes it; the loops use it from
// their next batch on. Peers that fail Validate are skipped and logged. The
// engine keeps its own copy of peers.
func (e *Engine) SetPeers(peers []Peer) {
	t := NewDualTable(e.cfg.Network, e.cfg.SubnetLen, e.cfg.IPv6Network, e.cfg.IPv6SubnetLen, peers)
	for _, err := range t.Skipped() {
		e.log.Warn("peer skipped", zap.Error(err))
	}
	e.table.Store(t)
	e.log.Debug("peer table published", zap.Int("peers", t.Len()))
}

// SetLocal changes the engine's own subnet, after the agent re-acquired a
// lease for another one; the loops use it from their next batch on.
func (e *Engine) SetLocal(local netip.Prefix) {
	l := *e.local.Load()
	l.v4 = local.Masked()
	e.local.Store(&l)
}

// SetFramer replaces the framing (a vxlan framing with a new VtepMAC after
// a collision); the loops use it from their next batch on, so a batch is
// framed and unframed with one framing. f's Overhead must fit the headroom
// as Config.Framer's does; on error the old framing stays.
func (e *Engine) SetFramer(f Framer) error {
	if f == nil {
		return errors.New("router: SetFramer: framer must not be nil")
	}
	if err := checkFramer("SetFramer", f); err != nil {
		return err
	}
	e.framer.Store(&f)
	return nil
}

// Table returns the table the loops currently use.
func (e *Engine) Table() *Table { return e.table.Load() }

// Stats returns the engine's live counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Run forwards packets until ctx is done, Close is called, or a loop fails.
// It returns the first fatal error, or nil after a requested stop. It closes
// every Device and Conn before it returns. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("router: Run called twice")
	}
	loops := e.loops()
	errc := make(chan error, len(loops))
	for _, run := range loops {
		go func() { errc <- run() }()
	}

	var first error
	pending := len(loops)
	select {
	case <-ctx.Done():
	case first = <-errc:
		pending--
	}
	_ = e.Close() // unblocks the other loop; a close error is not the cause
	for ; pending > 0; pending-- {
		if err := <-errc; first == nil {
			first = err
		}
	}
	return first
}

// Close stops the loops by closing every Device and Conn. Safe to call
// more than once and from any goroutine; later calls return nil.
func (e *Engine) Close() error {
	first := false
	e.closeOnce.Do(func() {
		first = true
		e.closed.Store(true)
		e.closeErr = errors.Join(e.cfg.Device.Close(), e.cfg.Conn.Close(), e.closeQueues())
		if e.closeErr != nil {
			e.closeErr = fmt.Errorf("router: close: %w", e.closeErr)
		}
	})
	if !first {
		return nil
	}
	return e.closeErr
}

// readFailed decides what a loop does after a read error: stop quietly
// when the engine is closing, stop with the error when the fd was closed
// under us or the error repeats, or count it and go on.
func (e *Engine) readFailed(dir string, err error, inARow *int) (stop bool, fatal error) {
	if e.closed.Load() {
		return true, nil
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return true, fmt.Errorf("router: %s read: %w", dir, err)
	}
	*inARow++
	if *inARow >= maxReadErrors {
		return true, fmt.Errorf("router: %s read failed %d times in a row: %w", dir, *inARow, err)
	}
	e.drops.readError(dir, err)
	return false, nil
}
