package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// Restarts keep the overlay: felt makes its TUN persistent, so the device,
// its address and its route to the Network outlive the process. While no
// felt runs, packets into the TUN are dropped (TCP retransmits them) rather
// than routed elsewhere; the next felt attaches to the same device
// (tun.Create attaches to an existing TUN). A TUN deleted by hand under a
// running felt is recreated (engSlot.Run).

// openPersistentTUN creates the TUN name as a persistent device owned by
// this user if it does not exist (multi-queue for queues > 1), then attaches
// queues queues to it with opts.
func openPersistentTUN(name string, mtu, queues int, opts tun.Options) ([]*tun.Device, error) {
	_, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		flags := netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR
		if queues > 1 {
			flags |= netlink.TUNTAP_MULTI_QUEUE
		}
		t := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TUN,
			Flags: flags, Owner: uint32(os.Getuid()), Group: uint32(os.Getgid())}
		if err := netlink.LinkAdd(t); err != nil && !os.IsExist(err) {
			// No CAP_NET_ADMIN, say: tun.Create explains what to do.
			return tun.CreateQueues(name, mtu, queues, opts)
		}
	}
	return tun.CreateQueues(name, mtu, queues, opts)
}

// removeStaleTUN deletes the TUN name that an earlier udp or vxlan run left
// (it is persistent) when this run's backend has none (host-gw, alloc,
// extension): its address and route to the Network would otherwise stay,
// and the kernel would send into a device nobody reads whatever no more
// specific route catches. A link of that name that is not a TUN is left
// alone.
func removeStaleTUN(name string, log *zap.Logger) error {
	l, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for a TUN %s left by an earlier run: %w", name, err)
	}
	if t, ok := l.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TUN {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete the TUN %s left by an earlier run (this backend has none): %w", name, err)
	}
	log.Info("deleted the TUN an earlier run left: this backend has none", zap.String("tun", name))
	return nil
}

// engineView is what /metrics and /status read of the packet path.
type engineView interface {
	Counters() router.Snapshot
	Table() *router.Table
}

// engSlot holds the running engine and replaces it when the TUN under it
// was deleted; it remembers the peers and the own subnet to hand to a new
// one. It is the node's forwarder: SetPeers and SetLocal come from the
// watch and lease goroutines, Run from the router goroutine.
type engSlot struct {
	log     *zap.Logger
	tun     string
	rebuild func() (*router.Engine, error)   // a new TUN, socket and engine
	pause   func(why string) (resume func()) // withdraws readiness during a rebuild; nil: none

	mu     sync.Mutex
	cur    *router.Engine
	peers  []router.Peer
	local  netip.Prefix
	local6 netip.Prefix
	framer router.Framer   // nil: the one the engine was built with
	past   router.Snapshot // the totals of the engines replaced so far
}

func newEngSlot(eng *router.Engine, tunName string, local netip.Prefix, rebuild func() (*router.Engine, error), log *zap.Logger) *engSlot {
	return &engSlot{cur: eng, tun: tunName, local: local, rebuild: rebuild, log: log}
}

func (s *engSlot) current() *router.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *engSlot) SetPeers(p []router.Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = p
	s.cur.SetPeers(p)
}

func (s *engSlot) SetLocal(l netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local = l
	s.cur.SetLocal(l)
}

// SetFramer swaps the framing (a new VtepMAC) now and for a rebuilt engine.
func (s *engSlot) SetFramer(f router.Framer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cur.SetFramer(f); err != nil {
		return err
	}
	s.framer = f
	return nil
}

func (s *engSlot) SetLocal6(l netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.local6 = l
	s.cur.SetLocal6(l)
}

// Counters are the current engine's plus those of the engines it replaced,
// so that /status and /metrics count on across a recreated TUN.
func (s *engSlot) Counters() router.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return addSnapshots(s.past, s.cur.Stats().Snapshot())
}

func (s *engSlot) Table() *router.Table { return s.current().Table() }

// close closes the current engine (the earlier ones were closed when they
// were replaced).
func (s *engSlot) close() { s.current().Close() }

func addSnapshots(a, b router.Snapshot) router.Snapshot {
	a.OutPackets += b.OutPackets
	a.OutBytes += b.OutBytes
	a.InPackets += b.InPackets
	a.InBytes += b.InBytes
	a.ReadErrors += b.ReadErrors
	a.LingerHits += b.LingerHits
	a.LingerMisses += b.LingerMisses
	a.LingerReady += b.LingerReady
	for i := range a.Drops {
		a.Drops[i] += b.Drops[i]
	}
	return a
}

// Run runs the engine; when it stops because its TUN is gone (deleted with
// `ip link del`), Run builds a new TUN, socket and engine and goes on, not
// ready meanwhile. Any other failure is returned.
func (s *engSlot) Run(ctx context.Context) error {
	for {
		old := s.current()
		err := old.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			return nil
		}
		if !tunGone(s.name()) {
			return err
		}
		s.log.Warn("the TUN device was deleted; recreating it", zap.String("tun", s.name()), zap.NamedError("cause", err))
		resume := func() {}
		if s.pause != nil {
			resume = s.pause("recreating the deleted TUN " + s.name())
		}
		eng, rerr := s.rebuild()
		if rerr != nil {
			return fmt.Errorf("recreate the deleted TUN: %w (after: %v)", rerr, err)
		}
		old.Close() // Run closed its devices already; nothing refers to it after this
		s.mu.Lock()
		s.past = addSnapshots(s.past, old.Stats().Snapshot()) // its loops have ended: final
		s.cur = eng
		eng.SetLocal(s.local)
		if s.local6.IsValid() {
			eng.SetLocal6(s.local6)
		}
		eng.SetPeers(s.peers)
		var ferr error
		if s.framer != nil {
			ferr = eng.SetFramer(s.framer) // accepted once already
		}
		s.mu.Unlock()
		if ferr != nil {
			return fmt.Errorf("recreate the deleted TUN: %w", ferr)
		}
		resume()
		s.log.Info("TUN recreated; forwarding again", zap.String("tun", s.name()))
	}
}

func (s *engSlot) name() string { return s.tun }

func tunGone(name string) bool {
	_, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
}

// rebuildPlane replaces the plane's TUN and socket after the TUN was
// deleted, reconfigures the TUN for the current lease (addresses, MTU,
// routes of both families) and returns a new engine on them.
func (n *node) rebuildPlane() (*router.Engine, error) {
	laddr := n.plane.conn.LocalAddr()
	devs, conns, err := openQueues(laddr, n.cfg.TUNName, n.plane.mtu, 1+len(n.plane.more), n.log, n.plane.listen, func(err error) error {
		return fmt.Errorf("listen on udp %s again: %w", laddr, err)
	})
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for i := range devs {
			devs[i].Close()
			conns[i].Close()
		}
	}
	n.plane.dev, n.plane.conn, n.plane.more = devs[0], conns[0], queuesOf(devs, conns)
	own := n.st.current()
	if err := n.st.configureTUN(own); err != nil {
		closeAll()
		return nil, err
	}
	eng, err := n.newEngine(own)
	if err != nil {
		closeAll()
		return nil, err
	}
	return eng, nil
}
