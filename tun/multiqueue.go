package tun

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Multiple queues: a TUN made with IFF_MULTI_QUEUE takes one file descriptor
// per queue, each its own Device here (its own reader, writer and io_uring
// rings), so one goroutine pair per queue runs without sharing anything.
// The kernel picks the queue of a packet it hands to felt by its flow
// (tun_automq_select_queue): the queue that last wrote a packet of that
// flow, else the flow's hash over the queues; so one flow is read from one
// queue, in order, except when its writes move to another queue (then a few
// packets still in the old queue may be read after the new one's, once).
// With one queue attached the kernel computes no flow hash on write
// (tun_get_user), so a multi-queue TUN used with one queue costs what a
// single-queue one does.

// MaxQueues is the most queues a TUN takes (the kernel's MAX_TAP_QUEUES).
const MaxQueues = 256

// ErrSingleQueue is what CreateQueues returns, wrapped, for more than one
// queue on an existing TUN made without IFF_MULTI_QUEUE: the flag is fixed
// when the device is made, so it has to be recreated (Remove) or used with
// one queue.
var ErrSingleQueue = errors.New("tun: the existing TUN is single-queue (made without IFF_MULTI_QUEUE)")

// CreateQueues is CreateWith for n queues of the TUN name: n == 1 is exactly
// CreateWith; for n > 1 the device is created with IFF_MULTI_QUEUE (or
// attached to, if it exists multi-queue and no process has a queue of it
// open) and one Device per queue is returned, queue 0 first. The Devices
// share the link (name, MTU, addresses); each has its own fd, and closing
// all of them removes a TUN that CreateQueues made. opts.Logger gets the
// I/O path line of queue 0; every queue logs with a "queue" field.
func CreateQueues(name string, mtu, n int, opts Options) ([]*Device, error) {
	if n < 1 || n > MaxQueues {
		return nil, fmt.Errorf("tun: queues %d: must be between 1 and %d", n, MaxQueues)
	}
	if n == 1 {
		d, err := CreateWith(name, mtu, opts)
		if err != nil {
			return nil, err
		}
		return []*Device{d}, nil
	}
	if err := checkCreate(name, mtu); err != nil {
		return nil, err
	}
	existing, err := existingTUN(name)
	if err != nil {
		return nil, err
	}
	if existing != nil && !isMultiQueue(existing) {
		return nil, fmt.Errorf("tun: %d queues on %s: %w; recreate it (ip tuntap del dev %s mode tun) or use one queue",
			n, name, ErrSingleQueue, name)
	}
	if err := checkFree(name, existing); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	devs := make([]*Device, 0, n)
	for i := 0; i < n; i++ {
		o := opts
		o.Logger = log.With(zap.Int("queue", i))
		if i > 0 {
			o.Logger = o.Logger.WithOptions(zap.IncreaseLevel(zap.WarnLevel)) // the path line once, from queue 0
		}
		d, err := attach(name, mtu, existing, true, o)
		if err != nil {
			for _, d := range devs {
				d.Close()
			}
			return nil, fmt.Errorf("tun: queue %d of %d: %w", i, n, err)
		}
		devs = append(devs, d)
		if existing, err = existingTUN(name); err != nil || existing == nil {
			for _, d := range devs {
				d.Close()
			}
			return nil, fmt.Errorf("tun: look up %s after attaching queue %d: %v", name, i, err)
		}
	}
	return devs, nil
}

// IsMultiQueue reports whether the TUN name exists and was made with
// IFF_MULTI_QUEUE; a missing device is false with a nil error.
func IsMultiQueue(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	t, err := existingTUN(name)
	if err != nil || t == nil {
		return false, err
	}
	return isMultiQueue(t), nil
}

func isMultiQueue(t *netlink.Tuntap) bool {
	return t != nil && t.Flags&netlink.TUNTAP_MULTI_QUEUE != 0
}

// checkFree refuses a multi-queue TUN that another process has queues of
// open: the kernel would take another queue, and two felts would share
// the device's traffic. (A single-queue TUN refuses a second fd itself,
// EBUSY.) The kernel reports the counts for multi-queue devices only.
func checkFree(name string, t *netlink.Tuntap) error {
	if !isMultiQueue(t) || t.Queues+t.DisabledQueues == 0 {
		return nil
	}
	return fmt.Errorf("tun: TUN %s is already open in another process (%d queues attached): stop that process or choose another name: %w",
		name, t.Queues+t.DisabledQueues, unix.EBUSY)
}

// RemoveSingleQueue deletes the TUN name if it exists single-queue and no
// process has it open, so that CreateQueues can make it again, multi-queue
// (a persistent TUN keeps the flag it was made with). It reports whether it
// deleted the device; a missing, multi-queue or non-TUN link is left alone
// (false, nil: CreateQueues takes or reports it). An error says why a
// single-queue TUN stays: open in another process, or no CAP_NET_ADMIN.
// The device's addresses and routes go with it.
func RemoveSingleQueue(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	t, err := existingTUN(name)
	if err != nil || t == nil || isMultiQueue(t) {
		return false, nil
	}
	// A single-queue TUN takes one fd: attaching shows whether another
	// process holds it (EBUSY), and holding it keeps others out until the
	// device is gone.
	fd, err := openTUN(name, t, false)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	if err := Remove(name); err != nil {
		return false, err
	}
	return true, nil
}
