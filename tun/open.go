package tun

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const cloneDevice = "/dev/net/tun"

// existingTUN returns the TUN link called name, nil if there is no link by
// that name, or an error if the name belongs to something that is not a TUN.
func existingTUN(name string) (*netlink.Tuntap, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("tun: look up link %s: %w", name, err)
	}
	t, ok := link.(*netlink.Tuntap)
	if !ok {
		return nil, fmt.Errorf("tun: link %s exists and is a %s, not a TUN: choose another name or delete it (ip link del %s)",
			name, link.Type(), name)
	}
	if t.Mode != netlink.TUNTAP_MODE_TUN {
		return nil, fmt.Errorf("tun: link %s is a TAP device, not a TUN: choose another name or recreate it (ip tuntap del dev %s mode tap)",
			name, name)
	}
	return t, nil
}

// openTUN attaches a new non-blocking file descriptor to the TUN name,
// creating the device if it does not exist; multi asks for IFF_MULTI_QUEUE,
// which must match an existing device's. The caller owns the descriptor.
func openTUN(name string, existing *netlink.Tuntap, multi bool) (int, error) {
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, openError(err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tun: device name %q: %w", name, err)
	}
	// IFF_VNET_HDR is what lets setOffloads turn on TSO/USO; the kernel takes
	// the feature flags from whoever attaches, also on a persistent TUN.
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if multi {
		flags |= unix.IFF_MULTI_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, attachError(name, existing, err)
	}
	// Non-blocking before os.NewFile, so that reads go through the poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tun: set %s non-blocking: %w", name, err)
	}
	return fd, nil
}

func openError(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("tun: %s is missing: load the tun module (modprobe tun) or, in a container, pass the device in (--device %s): %w",
			cloneDevice, cloneDevice, err)
	case isPerm(err):
		return fmt.Errorf("tun: cannot open %s: give this user read-write access to it (it is normally mode 0666): %w", cloneDevice, err)
	}
	return fmt.Errorf("tun: open %s: %w", cloneDevice, err)
}

func attachError(name string, existing *netlink.Tuntap, err error) error {
	switch {
	case isPerm(err) && existing == nil:
		return fmt.Errorf("tun: creating TUN %s needs CAP_NET_ADMIN: run as root, or have an admin create a persistent TUN "+
			"(ip tuntap add dev %s mode tun user %d) and use it: %w", name, name, os.Getuid(), err)
	case isPerm(err):
		return fmt.Errorf("tun: TUN %s belongs to another user (owner uid %d, group %d; you are uid %d): have an admin recreate it "+
			"(ip tuntap del dev %s mode tun; ip tuntap add dev %s mode tun user %d) or run as root: %w",
			name, existing.Owner, existing.Group, os.Getuid(), name, name, os.Getuid(), err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("tun: TUN %s is already open in another process: stop that process or choose another name: %w", name, err)
	case errors.Is(err, unix.EINVAL) && existing != nil:
		return fmt.Errorf("tun: TUN %s exists with incompatible flags (%v): recreate it (ip tuntap del dev %s mode tun): %w",
			name, existing.Flags, name, err)
	}
	return fmt.Errorf("tun: attach to TUN %s: %w", name, err)
}
