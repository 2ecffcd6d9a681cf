package router

import (
	"sync/atomic"

	"github.com/feltnet/felt/internal/drop"
)

// Stats counts what the engine moved and dropped. The loops add to it once
// per batch; any goroutine may read it. The zero value is ready.
type Stats struct {
	outPackets, outBytes atomic.Uint64
	inPackets, inBytes   atomic.Uint64
	readErrors           atomic.Uint64
	lingerHits           atomic.Uint64
	lingerMisses         atomic.Uint64
	lingerReady          atomic.Uint64
	drops                [drop.NumReasons]atomic.Uint64
}

// Snapshot is a copy of Stats at one moment (each counter read atomically,
// not the set as a whole).
type Snapshot struct {
	OutPackets, OutBytes uint64 // inner IP packets (and their bytes) sent to peers
	InPackets, InBytes   uint64 // inner IP packets (and their bytes) written to the TUN
	ReadErrors           uint64 // transient Device/Conn read errors
	// Waits after a TUN write (Config.Linger): ended by the TUN becoming
	// readable (a reply picked up awake); timed out or ended by a datagram;
	// over at the first poll, the TUN readable already.
	LingerHits, LingerMisses, LingerReady uint64
	Drops                                 [drop.NumReasons]uint64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	var out Snapshot
	out.OutPackets = s.outPackets.Load()
	out.OutBytes = s.outBytes.Load()
	out.InPackets = s.inPackets.Load()
	out.InBytes = s.inBytes.Load()
	out.ReadErrors = s.readErrors.Load()
	out.LingerHits = s.lingerHits.Load()
	out.LingerMisses = s.lingerMisses.Load()
	out.LingerReady = s.lingerReady.Load()
	for i := range s.drops {
		out.Drops[i] = s.drops[i].Load()
	}
	return out
}

// Dropped returns the number of packets dropped for r.
func (s Snapshot) Dropped(r drop.Reason) uint64 {
	if r >= drop.NumReasons {
		return 0
	}
	return s.Drops[r]
}

// TotalDropped sums the drops over every reason.
func (s Snapshot) TotalDropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}
