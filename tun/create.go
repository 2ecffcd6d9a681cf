package tun

import (
	"fmt"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Batch is how many packets one Read of a Device returns at most (the
// buffers it wants).
const Batch = 128

// Options are Create's choices beyond name and MTU.
type Options struct {
	// IOUring lets the device write the TUN in io_uring batches (one
	// enter per Write) where this process may use io_uring; without it, or
	// where io_uring is unavailable (an old kernel,
	// kernel.io_uring_disabled, a seccomp filter, FELT_IO_URING=off in the
	// environment), the device uses writev(2) per frame. Device.IOPath
	// says which it took.
	IOUring bool
	// IOUringReads, with IOUring, reads the TUN in batches of io_uring
	// READs too, instead of read(2) until EAGAIN. Off by default: on a
	// shared 2-vCPU machine it cost more CPU per packet and dropped more at
	// the TUN than read(2) (docs/performance.md, "io_uring on the TUN").
	IOUringReads bool
	// Moderate is read moderation's sleep (tun/device.go readOnce): while
	// small packets are read at a high rate, a Read that finds the TUN
	// empty sleeps this long before it parks, so that a flood is read in
	// larger batches and with fewer wake-ups. The reading goroutine keeps
	// its P while it sleeps: leave it 0 (off) where that would stall other
	// work (fewer Ps than busy loops). 0 turns it off.
	Moderate time.Duration
	// Logger gets one line at creation saying which I/O path the device
	// took and why; nil means no logging.
	Logger *zap.Logger
}

// DefaultOptions returns IOUring on (writes), IOUringReads off, Moderate
// 50 µs (or FELT_TUN_MODERATE's) and no Logger.
func DefaultOptions() Options {
	m, _ := moderateFromEnv() // CreateWith reports a bad value
	return Options{IOUring: true, Moderate: m}
}

// Create is CreateWith with DefaultOptions.
func Create(name string, mtu int) (*Device, error) {
	return CreateWith(name, mtu, DefaultOptions())
}

// CreateWith creates the TUN name, or attaches to it if it already exists and
// this process may use it (a persistent TUN made with `ip tuntap add ... user
// UID`), and returns it with TSO (and, from Linux 6.2, USO) offloads on;
// Offloads reports what the kernel took. mtu 0 keeps the link's MTU.
//
// Without CAP_NET_ADMIN (a persistent TUN handed to a non-root user) the MTU
// is left as the admin set it, and Configure reports what it could not do.
//
// Closing the device removes a TUN that Create made (it is not persistent);
// a persistent TUN stays.
func CreateWith(name string, mtu int, opts Options) (*Device, error) {
	if err := checkCreate(name, mtu); err != nil {
		return nil, err
	}
	if _, err := moderateFromEnv(); err != nil && opts.Logger != nil {
		opts.Logger.Warn("ignoring a bad environment variable", zap.Error(err))
	}
	existing, err := existingTUN(name)
	if err != nil {
		return nil, err
	}
	if err := checkFree(name, existing); err != nil {
		return nil, err
	}
	return attach(name, mtu, existing, isMultiQueue(existing), opts)
}

// attach opens one queue of the TUN name (existing as looked up, nil to
// create it), with IFF_MULTI_QUEUE if multi, turns the offloads on, sets the
// MTU (0 keeps the link's) and returns the Device.
func attach(name string, mtu int, existing *netlink.Tuntap, multi bool, opts Options) (*Device, error) {
	fd, err := openTUN(name, existing, multi)
	if err != nil {
		return nil, err
	}
	uso, err := setOffloads(fd, name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: look up %s after attaching: %w", name, err)
	}
	if mtu == 0 {
		mtu = link.Attrs().MTU
	}
	// Setting the MTU doubles as the capability probe: every netlink write
	// checks CAP_NET_ADMIN first, even when it would change nothing. Without
	// it the MTU stays as the admin set it.
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		if !isPerm(err) {
			unix.Close(fd)
			return nil, fmt.Errorf("tun: set MTU %d on %s: %w", mtu, name, err)
		}
		mtu = link.Attrs().MTU // the admin's
	}
	f := os.NewFile(uintptr(fd), cloneDevice)
	d, err := newDevice(f, name, Batch, uso, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	d.mtu = mtu
	return d, nil
}

// TUN offload flags (linux/if_tun.h): what the kernel may hand to a reader
// with IFF_VNET_HDR, and so what the link advertises (tx-*-segmentation).
const (
	tunTCPOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	tunUDPOffloads = unix.TUN_F_USO4 | unix.TUN_F_USO6 // Linux 6.2 and later
)

// setOffloads turns on checksum and TCP segmentation offload, and UDP
// segmentation where the kernel has it; it reports whether it has.
func setOffloads(fd int, name string) (uso bool, err error) {
	if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunTCPOffloads|tunUDPOffloads) == nil {
		return true, nil
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunTCPOffloads); err != nil {
		return false, fmt.Errorf("tun: turn on checksum and TCP segmentation offload (TUNSETOFFLOAD) on %s: %w", name, err)
	}
	return false, nil
}
