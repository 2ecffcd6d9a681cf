package router

import (
	"net/netip"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/internal/drop"
)

// Device is the TUN side: felt's *tun.Device. (wireguard-go's tun.Device has
// the same signatures, but its Write returns bytes, not packets: it needs an
// adapter.) The engine owns it once passed to New: Close closes it.
type Device interface {
	// Read fills up to len(bufs) packets (0 with a nil error when a
	// wake-up only found frames the device dropped), packet i at
	// bufs[i][offset:offset+sizes[i]]; each bufs[i] has room for
	// offset+65535 bytes. The engine owns bufs; Read must not keep them.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write writes packet i from bufs[i][offset:] (offset >= 0) and
	// returns how many it handed over; with an error, the packets neither
	// handed over nor counted by DeviceDrops count as WriteFailed. It may
	// rewrite the packets' headers in place but touches nothing in front
	// of bufs[i][offset:]: the inbound loop passes inner packets that lie
	// back to back in the Conn's memory, at offset 0. It keeps nothing
	// after it returns.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the most packets one Read returns; fixed for the
	// device's lifetime.
	BatchSize() int
	// Close makes a blocked and every later Read return an error.
	Close() error
}

// DeviceDrops is optional on a Device that drops packets itself: malformed
// frames from the kernel on Read, damaged packets on Write. The loops fold
// its counts into the engine's drop counters and logs once per batch. It
// must not allocate.
type DeviceDrops interface {
	// ReadDrops adds to counts[r] what Read dropped for reason r since the
	// last call, and resets its own counts. Only the reading goroutine
	// calls it.
	ReadDrops(counts *[drop.NumReasons]uint32)
	// WriteDrops is the same for Write, from the writing goroutine.
	WriteDrops(counts *[drop.NumReasons]uint32)
}

// Conn is the UDP side (encap.Conn). The engine owns it once passed to New:
// Close closes it.
type Conn interface {
	// ReadViews blocks until datagrams arrive and returns up to
	// min(len(views), len(addrs)) of them: datagram i is views[i] from
	// addrs[i], a slice of the Conn's memory (no copy) that the engine
	// may read and rewrite in place until its next ReadViews, and keeps
	// no longer.
	ReadViews(views [][]byte, addrs []netip.AddrPort) (int, error)
	// WriteBatch sends pkts[i] to addrs[i]; the engine puts packets for one
	// peer next to each other so they can leave as one GSO send. The
	// slices are only borrowed for the call.
	WriteBatch(pkts [][]byte, addrs []netip.AddrPort) error
	// BatchSize is the most datagrams one ReadViews returns.
	BatchSize() int
	// Close makes a blocked and every later ReadViews return an error.
	Close() error
}

var (
	_ Conn   = (*encap.Conn)(nil)
	_ Framer = (*encap.VXLAN)(nil)
	_ Framer = (*encap.UDP)(nil)
)

// Framer is one of encap's wire formats (*encap.VXLAN or *encap.UDP).
type Framer interface {
	// Overhead is the header length Encap writes before the packet; it
	// must fit in encap.Headroom minus the TUN's virtio header (vnet.HdrLen):
	// see checkFramer.
	Overhead() int
	// Encap frames the IP packet buf[off:off+n] in place (writing into
	// buf[off-Overhead():off]) for a peer whose VtepMAC is dst.
	Encap(buf []byte, off, n int, dst [6]byte) ([]byte, drop.Reason)
	// Decap validates frame and returns the inner IP packet, a subslice
	// of frame.
	Decap(frame []byte) ([]byte, drop.Reason)
}
