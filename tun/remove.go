package tun

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Remove deletes the TUN name, also a persistent one. A missing device is
// fine; a link by that name that is not a TUN is left alone and reported.
func Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	t, err := existingTUN(name)
	if err != nil || t == nil {
		return err
	}
	if err := netlink.LinkDel(t); err != nil {
		if isPerm(err) {
			return fmt.Errorf("tun: remove %s: %s: %w", name, noCap("ip tuntap del dev "+name+" mode tun"), err)
		}
		if errors.Is(err, unix.ENODEV) {
			return nil
		}
		return fmt.Errorf("tun: remove %s: %w", name, err)
	}
	return nil
}
