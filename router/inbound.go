package router

import (
	"net/netip"

	"github.com/feltnet/felt/encap"
)

// inbound is the UDP → TUN loop's state, owned by the inbound goroutine and
// allocated once in New.
type inbound struct {
	e     *Engine
	dev   Device   // this queue's: written here
	conn  Conn     // this queue's: read here
	bufs  [][]byte // read buffers, bufSize each; datagram i at bufs[i][Headroom:]
	sizes []int
	addrs []netip.AddrPort

	// out[k] is a reslice of one of bufs whose inner packet starts at
	// out[k][Headroom:], so the Device gets one offset for the whole batch
	// and the headroom in front of it for its virtio header.
	out [][]byte

	tally    tally
	devDrops deviceDrops // the Device's Write drops
	inARow   int
}

func newInbound(e *Engine, dev Device, conn Conn, dd deviceDrops) *inbound {
	batch := conn.BatchSize()
	in := &inbound{
		e:        e,
		dev:      dev,
		conn:     conn,
		devDrops: dd,
		sizes:    make([]int, batch),
		addrs:    make([]netip.AddrPort, batch),
		out:      make([][]byte, 0, batch),
	}
	in.bufs = newBufs(batch)
	return in
}

func (in *inbound) run() error {
	conn := in.conn
	for {
		n, err := conn.ReadBatch(in.bufs, in.sizes, in.addrs, encap.Headroom)
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

// forward checks and unframes the n datagrams in in.bufs and writes the
// inner packets to the Device in one call.
func (in *inbound) forward(n int) {
	e := in.e
	t := e.table.Load()
	fr := *e.framer.Load()
	local := *e.local.Load()
	var bytes uint64
	in.out = in.out[:0]
	for i := 0; i < n; i++ {
		buf := in.bufs[i]
		from := in.addrs[i].Addr()
		peer := t.BySender(from)
		if peer == nil {
			in.tally.drop(UnknownSender, from)
			continue
		}
		pkt, r := fr.Decap(buf[encap.Headroom : encap.Headroom+in.sizes[i]])
		if r != encap.OK {
			in.tally.drop(Reason(r), from)
			continue
		}
		src, ok := encap.InnerSrc(pkt)
		if !ok {
			in.tally.drop(Reason(encap.BadIP), from)
			continue
		}
		if !peer.Subnet.Contains(src) && t.Sender(from, src) == nil {
			in.tally.drop(SourceOutsideSubnet, src)
			continue
		}
		dst, ok := encap.InnerDst(pkt)
		if !ok || !local.Contains(dst) {
			in.tally.drop(NotLocal, dst)
			continue
		}
		// Decap returns a subslice of the frame; its start within buf
		// follows from the capacities, as both end at the buffer's end.
		start := cap(buf) - cap(pkt)
		if start < encap.Headroom || start+len(pkt) > len(buf) {
			in.tally.drop(Reason(encap.BadHeader), from)
			continue
		}
		in.out = append(in.out, buf[start-encap.Headroom:start+len(pkt)])
		bytes += uint64(len(pkt))
	}
	in.write(bytes)
	e.drops.flush(&in.tally, "inbound")
}

func (in *inbound) write(bytes uint64) {
	k := len(in.out)
	if k == 0 {
		return
	}
	n, err := in.dev.Write(in.out, encap.Headroom)
	if err != nil && in.e.closed.Load() {
		return
	}
	written := k - in.devDrops.fold(&in.tally, false)
	if err != nil {
		f := min(max(1, written-n), written)
		in.tally.add(WriteFailed, uint32(f))
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
