package router

import (
	"net/netip"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
)

// outbound is the TUN → UDP loop's state. Everything here belongs to the
// outbound goroutine; it is allocated in New (the grouping marks grow when a
// table with more peers arrives) and reused for every batch.
type outbound struct {
	e     *Engine
	dev   Device   // this queue's: read here
	conn  Conn     // this queue's: sent on here
	bufs  [][]byte // read buffers, bufSize each; packet i at bufs[i][Headroom:]
	sizes []int

	// per packet of the current batch
	frame []([]byte) // framed packet, a subslice of bufs[i]; nil if dropped
	peer  []int32    // table index+1 of its peer

	// the batch grouped per peer, handed to Conn.WriteBatch
	pkts  [][]byte
	addrs []netip.AddrPort

	// grouping marks, indexed by table index+1; a mark is valid when its
	// stamp equals gen, so nothing is cleared between batches
	gen       uint32
	stamp     []uint32
	groupOf   []uint16 // the peer's group: groups are numbered in order of first appearance
	groupNext []int    // per group: where its next packet goes in pkts (first its packet count)

	tally    tally
	devDrops deviceDrops // the Device's Read drops
	inARow   int
	unreach  unreach // ICMP replies to packets with no route (unreach.go)
}

func newOutbound(e *Engine, dev Device, conn Conn) *outbound {
	batch := dev.BatchSize()
	o := &outbound{
		e:         e,
		dev:       dev,
		conn:      conn,
		devDrops:  newDeviceDrops(dev),
		sizes:     make([]int, batch),
		frame:     make([][]byte, batch),
		peer:      make([]int32, batch),
		pkts:      make([][]byte, 0, batch),
		addrs:     make([]netip.AddrPort, 0, batch),
		groupNext: make([]int, batch),
	}
	o.bufs = newBufs(batch)
	o.unreach = newUnreach(e, dev)
	return o
}

func (o *outbound) run() error {
	dev := o.dev
	for {
		n, err := dev.Read(o.bufs, o.sizes, encap.Headroom)
		o.devDrops.fold(&o.tally, true)
		if n > 0 {
			if ferr := o.forward(n); ferr != nil {
				return ferr
			}
		} else {
			o.e.drops.flush(&o.tally, "outbound")
		}
		if err != nil {
			if stop, fatal := o.e.readFailed("outbound", err, &o.inARow); stop {
				return fatal
			}
			continue
		}
		o.inARow = 0
	}
}

// forward frames the n packets in o.bufs and sends them. It returns an
// error only when the Conn is gone.
func (o *outbound) forward(n int) error {
	e := o.e
	t := e.table.Load()
	fr := *e.framer.Load()
	local := *e.local.Load()
	var bytes uint64
	kept := 0
	for i := 0; i < n; i++ {
		o.frame[i] = nil
		size := o.sizes[i]
		pkt := o.bufs[i][encap.Headroom : encap.Headroom+size]
		dst, ok := encap.InnerDst(pkt)
		if !ok {
			o.tally.drop(drop.BadIP, dst)
			continue
		}
		if local.Contains(dst) {
			o.tally.drop(drop.OwnSubnet, dst)
			continue
		}
		idx := t.lookup(dst)
		if idx == 0 {
			o.tally.drop(drop.NoRoute, dst)
			o.unreach.reply(pkt)
			continue
		}
		f, r := fr.Encap(o.bufs[i], encap.Headroom, size, t.peers[idx-1].MAC)
		if r != drop.OK {
			o.tally.drop(r, dst)
			continue
		}
		o.frame[i] = f
		o.peer[i] = idx
		bytes += uint64(size)
		kept++
	}
	err := o.send(t, n, kept, bytes)
	e.drops.flush(&o.tally, "outbound")
	return err
}

// send groups the kept packets per peer, keeping their order within a peer,
// and hands them to the Conn in one call.
func (o *outbound) send(t *Table, n, kept int, bytes uint64) error {
	if kept == 0 {
		return nil
	}
	o.groupByPeer(t, n)
	sent, sentBytes := uint64(kept), bytes
	if err := o.conn.WriteBatch(o.pkts, o.addrs); err != nil {
		if o.e.closed.Load() {
			return nil
		}
		// The Conn still sends the rest of a batch past a failed packet
		// and reports only the first error: count that one packet (a
		// lower bound).
		const f = 1
		o.tally.n[drop.SendFailed] += f
		o.tally.example[drop.SendFailed] = o.addrs[0].Addr()
		o.tally.err = err
		o.tally.any = true
		sent -= uint64(f)
		sentBytes = sentBytes / uint64(kept) * sent // estimate: the failures' sizes are unknown
	}
	o.e.stats.outPackets.Add(sent)
	o.e.stats.outBytes.Add(sentBytes)
	return nil
}

// groupByPeer fills o.pkts/o.addrs with the batch's frames, peer by peer in the
// order peers first appear, stable within a peer (a counting sort).
func (o *outbound) groupByPeer(t *Table, n int) {
	if need := len(t.peers) + 1; len(o.stamp) < need {
		o.stamp = make([]uint32, need)
		o.groupOf = make([]uint16, need)
	}
	o.gen++
	if o.gen == 0 { // wrapped: old stamps could match again
		clear(o.stamp)
		o.gen = 1
	}
	groups := 0
	for i := 0; i < n; i++ {
		if o.frame[i] == nil {
			continue
		}
		p := o.peer[i]
		if o.stamp[p] != o.gen {
			o.stamp[p] = o.gen
			o.groupOf[p] = uint16(groups)
			o.groupNext[groups] = 0
			groups++
		}
		o.groupNext[o.groupOf[p]]++
	}
	pos := 0
	for g := 0; g < groups; g++ {
		c := o.groupNext[g]
		o.groupNext[g] = pos
		pos += c
	}
	o.pkts = o.pkts[:pos]
	o.addrs = o.addrs[:pos]
	for i := 0; i < n; i++ {
		if o.frame[i] == nil {
			continue
		}
		p := o.peer[i]
		g := o.groupOf[p]
		at := o.groupNext[g]
		o.groupNext[g]++
		o.pkts[at] = o.frame[i]
		o.addrs[at] = t.peers[p-1].Addr
	}
}

// newBufs allocates a loop's batch of buffers, bufSize each, from one
// backing array; each buffer's capacity ends at its own length, so nothing
// written into one (a device growing a packet) reaches the next.
func newBufs(batch int) [][]byte {
	bufs := make([][]byte, batch)
	backing := make([]byte, batch*bufSize)
	for i := range bufs {
		bufs[i] = backing[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
	}
	return bufs
}
