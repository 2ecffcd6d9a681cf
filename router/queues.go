package router

import (
	"errors"
	"fmt"
)

// Multiple queues: a Queue is one more TUN queue and one more socket (a
// multi-queue TUN's fd and a SO_REUSEPORT socket on the same port), run by
// a loop pair of its own, exactly as queue 0's (Config.Device and
// Config.Conn). The loops share the peer table snapshot, the own subnet,
// Stats and the drop log, all of which are atomics read or added once per
// batch, so nothing on the packet path is locked or copied per queue; drops
// and counters are the sums over the queues. Each loop sends on its own
// queue's Conn and writes to its own queue's Device, so a flow that arrives
// on one queue leaves on one socket or TUN queue, in order. What puts a flow
// on a queue is the kernel: the TUN hashes flows over its queues, the
// socket group hashes the outer 4-tuple (one peer on one socket; see
// encap.Options.ReusePort). The ICMP unreachable rate limit is per queue.
//
// With no Queues the engine is what it was before queues existed: two
// loops, no extra indirection per packet.

// Queue is one more Device and Conn for the engine, owned by it from New
// on like Config.Device and Config.Conn (Close closes them).
type Queue struct {
	Device Device
	Conn   Conn
}

// queue is one Queue's loop pair.
type queue struct {
	out *outbound
	in  *inbound
}

func (c *Config) validateQueues() error {
	for i, q := range c.Queues {
		switch {
		case q.Device == nil:
			return fmt.Errorf("router: config Queues[%d].Device: must not be nil", i)
		case q.Conn == nil:
			return fmt.Errorf("router: config Queues[%d].Conn: must not be nil", i)
		case q.Device.BatchSize() < 1:
			return fmt.Errorf("router: config Queues[%d].Device batch size %d: must be at least 1", i, q.Device.BatchSize())
		case q.Conn.BatchSize() < 1:
			return fmt.Errorf("router: config Queues[%d].Conn batch size %d: must be at least 1", i, q.Conn.BatchSize())
		}
	}
	return nil
}

// newQueues allocates the loop pairs of Config.Queues.
func (e *Engine) newQueues() {
	for _, q := range e.cfg.Queues {
		e.more = append(e.more, queue{out: newOutbound(e, q.Device, q.Conn), in: newInbound(e, q.Device, q.Conn)})
	}
}

// loops returns every loop's run function, queue 0's first.
func (e *Engine) loops() []func() error {
	fns := []func() error{e.out.run, e.in.run}
	for _, q := range e.more {
		fns = append(fns, q.out.run, q.in.run)
	}
	return fns
}

// closeQueues closes the Devices and Conns of Config.Queues.
func (e *Engine) closeQueues() error {
	var errs []error
	for _, q := range e.cfg.Queues {
		errs = append(errs, q.Device.Close(), q.Conn.Close())
	}
	return errors.Join(errs...)
}

// NumQueues is how many queues the engine runs (1 + len(Config.Queues)).
func (e *Engine) NumQueues() int { return 1 + len(e.more) }
