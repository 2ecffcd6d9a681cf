//go:build linux

package encap

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Holds: when the kernel refuses a GSO message to one destination, only
// that destination is held back, and only for runs as large as the refused
// one (a smaller segment may still fit its route). A hold lasts holdMin,
// doubling with each refusal in a row up to holdMax; when it runs out the
// next run of that size tries GSO again. The table is fixed: holdSets sets
// of holdWays destinations. A destination that finds its set full takes
// the slot whose hold ends first, so the table never grows; the one pushed
// out just tries GSO again sooner, at the cost of one more refused message.
const (
	holdSets = 64
	holdWays = 4
	holdMin  = time.Second
	holdMax  = 64 * time.Second
)

// hold is one destination's entry.
type hold struct {
	dst     netip.AddrPort
	until   int64 // writer clock (ns) at which the hold ends
	limit   int32 // largest segment size still sent as GSO to dst while held
	strikes uint8 // refusals in a row, each after the previous hold ended
}

// holds is the writer's table; only the writer goroutine touches it.
type holds struct {
	set  [holdSets][holdWays]hold
	live int64  // latest until of any entry: past it nothing is held
	seed uint64 // per-Conn hash seed, so no one can pick colliding peers
	min  int64  // first hold (ns); tests set 0 to retry at once
	max  int64  // longest hold (ns)
}

func (h *holds) init() {
	h.seed = rand.Uint64() | 1
	h.min, h.max = int64(holdMin), int64(holdMax)
}

func (h *holds) ways(dst netip.AddrPort) *[holdWays]hold {
	a := dst.Addr().As16()
	x := binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(a[8:]) ^ uint64(dst.Port())<<48
	x = (x ^ h.seed) * 0xbf58476d1ce4e5b9
	return &h.set[(x^x>>31)>>(64-6)]
}

// limit returns the largest segment size that may go to dst as GSO at
// time now (maxGSOBytes when dst is not held).
func (h *holds) limit(dst netip.AddrPort, now int64) int {
	if now >= h.live {
		return maxGSOBytes
	}
	w := h.ways(dst)
	for i := range w {
		if w[i].dst == dst && now < w[i].until {
			return int(w[i].limit)
		}
	}
	return maxGSOBytes
}

// refuse records at time now that the kernel refused a GSO message to dst
// whose segments were seg bytes; limit is the largest segment size still
// worth trying (seg-1 after a size refusal, 0 when no GSO run fits). It
// reports whether dst starts a new series of refusals (for logging).
func (h *holds) refuse(dst netip.AddrPort, limit int, now int64) (first bool) {
	w := h.ways(dst)
	e := &w[0]
	for i := range w {
		if w[i].dst == dst {
			e = &w[i]
			break
		}
		if w[i].until < e.until {
			e = &w[i]
		}
	}
	switch {
	case e.dst == dst && now < e.until: // still held: a smaller size was refused too
		e.limit = min(e.limit, int32(limit))
		return false
	case e.dst == dst && now-e.until <= h.max: // retried after the hold and refused again
		e.strikes = min(e.strikes+1, 16)
	default:
		*e = hold{dst: dst, strikes: 1}
		first = true
	}
	e.limit = int32(limit)
	e.until = now + min(h.min<<(e.strikes-1), h.max)
	h.live = max(h.live, e.until)
	return first
}
