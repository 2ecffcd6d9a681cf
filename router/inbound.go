package router

import (
	"net/netip"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
)

// inbound is the UDP → TUN loop's state, owned by the inbound goroutine and
// allocated once in New. It has no packet buffers of its own: datagrams are
// views of the Conn's memory, unframed in place and written to the Device
// from there.
type inbound struct {
	e     *Engine
	dev   Device   // this queue's: written here
	conn  Conn     // this queue's: read here
	views [][]byte // this batch's datagrams (Conn memory, valid until the next ReadViews)
	addrs []netip.AddrPort

	// out[k] is the inner packet of one of views, a subslice of it, for
	// the Device at offset 0 (it writes its virtio header from its own
	// scratch, so nothing in front of a packet is needed).
	out [][]byte

	tally    tally
	devDrops deviceDrops // the Device's Write drops
	inARow   int
	linger   *linger // nil: off (linger.go)
}

func newInbound(e *Engine, dev Device, conn Conn) *inbound {
	batch := conn.BatchSize()
	return &inbound{
		e:        e,
		dev:      dev,
		conn:     conn,
		devDrops: newDeviceDrops(dev),
		views:    make([][]byte, batch),
		addrs:    make([]netip.AddrPort, batch),
		out:      make([][]byte, 0, batch),
		linger:   newLinger(e.cfg.Linger, dev, conn, &e.stats),
	}
}

func (in *inbound) run() error {
	conn := in.conn
	for {
		n, err := conn.ReadViews(in.views, in.addrs)
		if n > 0 {
			in.forward(n)
		}
		if err != nil {
			if stop, fatal := in.e.readFailed("inbound", err, &in.inARow); stop {
				return fatal
			}
			continue
		}
		in.inARow = 0
	}
}

// forward checks and unframes the n datagrams in in.views and writes the
// inner packets to the Device in one call.
func (in *inbound) forward(n int) {
	e := in.e
	t := e.table.Load()
	fr := *e.framer.Load()
	local := *e.local.Load()
	var bytes uint64
	in.out = in.out[:0]
	for i := 0; i < n; i++ {
		from := in.addrs[i].Addr()
		peer := t.BySender(from)
		if peer == nil {
			in.tally.drop(drop.UnknownSender, from)
			continue
		}
		pkt, r := fr.Decap(in.views[i])
		if r != drop.OK {
			in.tally.drop(r, from)
			continue
		}
		src, ok := encap.InnerSrc(pkt)
		if !ok {
			in.tally.drop(drop.BadIP, from)
			continue
		}
		if !peer.Subnet.Contains(src) && t.Sender(from, src) == nil {
			in.tally.drop(drop.SourceOutsideSubnet, src)
			continue
		}
		dst, ok := encap.InnerDst(pkt)
		if !ok || !local.Contains(dst) {
			in.tally.drop(drop.NotLocal, dst)
			continue
		}
		in.out = append(in.out, pkt)
		bytes += uint64(len(pkt))
	}
	in.write(bytes)
	clear(in.views[:n]) // keep no view of the Conn's memory past the batch
	e.drops.flush(&in.tally, "inbound")
}

func (in *inbound) write(bytes uint64) {
	k := len(in.out)
	if k == 0 {
		return
	}
	n, err := in.dev.Write(in.out, 0)
	clear(in.out)
	if in.linger != nil {
		in.linger.wrote = true
	}
	if err != nil && in.e.closed.Load() {
		return
	}
	written := k - in.devDrops.fold(&in.tally, false)
	if err != nil {
		f := min(max(1, written-n), written)
		in.tally.add(drop.WriteFailed, uint32(f))
		in.tally.err = err
		written -= f
	}
	written = max(written, 0)
	if written < k {
		bytes = bytes / uint64(k) * uint64(written) // an estimate: the missing packets' sizes are unknown
	}
	in.e.stats.inPackets.Add(uint64(written))
	in.e.stats.inBytes.Add(bytes)
}
