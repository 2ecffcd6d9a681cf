package agent

import (
	"net/netip"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// DefaultQueues is --queues' default. One queue is felt's measured path:
// on the 2-vCPU machines felt is measured on, a second queue gave no gain
// (docs/performance.md, "Multiple queues"), the kernel keeps one peer's
// traffic on one socket whatever the count, and each queue holds two loops'
// buffers (about 17 MiB). Raise it on hosts with more cores and traffic
// from several peers.
const DefaultQueues = 1

// openQueues opens the packet path's TUN queues and UDP sockets, want of
// each (fewer if the TUN cannot be multi-queue: settleQueues), and returns
// them pairwise, queue 0 first. One queue is opened exactly as before queues
// existed: the socket (no SO_REUSEPORT), then the TUN. With more, the TUN
// comes first: attaching refuses a multi-queue TUN another felt holds,
// before any of our sockets join the port's group and take a share of its
// traffic. listen opens one socket (plane.listen: IPv4, or dual-stack);
// listenErr words a socket error for the caller.
func openQueues(laddr netip.AddrPort, name string, mtu, want int, log *zap.Logger,
	listen func(netip.AddrPort, encap.Options) (*encap.Conn, error), listenErr func(error) error) ([]*tun.Device, []*encap.Conn, error) {
	to := tun.DefaultOptions()
	to.Logger = log.Named("tun") // says which I/O path the TUN took
	o := encap.DefaultOptions()
	o.Logger = log.Named("udp")
	n := settleQueues(name, want, log.Named("tun"))
	if runtime.GOMAXPROCS(0) < 2*n {
		// Read moderation's sleep holds its loop's P: with fewer Ps than
		// loops another loop would wait for it.
		to.Moderate = 0
	}
	if n == 1 {
		conn, err := listen(laddr, o)
		if err != nil {
			return nil, nil, listenErr(err)
		}
		devs, err := openPersistentTUN(name, mtu, 1, to)
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		return devs, []*encap.Conn{conn}, nil
	}
	devs, err := openPersistentTUN(name, mtu, n, to)
	if err != nil {
		return nil, nil, err
	}
	o.ReusePort = true
	conns := make([]*encap.Conn, 0, n)
	for range n {
		conn, err := listen(laddr, o)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			for _, d := range devs {
				d.Close()
			}
			return nil, nil, listenErr(err)
		}
		conns = append(conns, conn)
		laddr = conn.LocalAddr() // the port the first one got, if laddr's was 0
	}
	log.Info("packet path queues", zap.Int("queues", n), zap.String("tun", name), zap.Stringer("udp", laddr))
	return devs, conns, nil
}

// settleQueues says how many queues the TUN name can have: want, unless it
// exists single-queue and cannot be recreated multi-queue (another process
// has it open, or no CAP_NET_ADMIN): then 1, with a log line saying why.
func settleQueues(name string, want int, log *zap.Logger) int {
	if want == 1 {
		return 1
	}
	removed, err := tun.RemoveSingleQueue(name)
	switch {
	case err != nil:
		log.Warn("the TUN exists single-queue and cannot be recreated multi-queue: running 1 queue, not --queues",
			zap.String("tun", name), zap.Int("queues", want), zap.Error(err))
		return 1
	case removed:
		log.Info("the TUN was single-queue: deleted to recreate it multi-queue (its addresses and routes are set again)",
			zap.String("tun", name), zap.Int("queues", want))
	}
	return want
}

// queuesOf pairs devs and conns past queue 0 as the engine's further queues.
func queuesOf(devs []*tun.Device, conns []*encap.Conn) []router.Queue {
	var qs []router.Queue
	for i := 1; i < len(devs); i++ {
		qs = append(qs, router.Queue{Device: devs[i], Conn: conns[i]})
	}
	return qs
}

// lingerFor is the engine's Config.Linger for queues loop pairs:
// router.LingerFromEnv, or 0 where the process has fewer than two Ps per
// queue (a lingering loop holds its P, as moderation's sleep does), with a
// warning if one was asked for.
func lingerFor(queues int, log *zap.Logger) time.Duration {
	d, err := router.LingerFromEnv()
	if err != nil {
		log.Warn("ignoring a bad environment variable", zap.Error(err))
	}
	if procs := runtime.GOMAXPROCS(0); d > 0 && procs < 2*queues {
		log.Warn("lingering off: it needs two Ps per queue", zap.String("env", router.LingerEnv),
			zap.Duration("asked", d), zap.Int("gomaxprocs", procs), zap.Int("queues", queues))
		return 0
	}
	return d
}
