package tun

import (
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Create creates the TUN name, or attaches to it if it already exists and
// this process may use it (a persistent TUN made with `ip tuntap add ... user
// UID`), and returns wireguard's tun.Device with TSO/GRO offloads on; check
// them with OffloadsOf. mtu 0 keeps the link's MTU.
//
// With CAP_NET_ADMIN the device is monitored: its Events channel reports
// up/down and MTU changes. Without it (a persistent TUN handed to a non-root
// user) the MTU is left as the admin set it, Events never fires, and
// Configure reports what it could not do.
//
// Closing the device removes a TUN that Create made (it is not persistent);
// a persistent TUN stays.
func Create(name string, mtu int) (wgtun.Device, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkMTU("mtu", mtu); err != nil {
		return nil, err
	}
	existing, err := existingTUN(name)
	if err != nil {
		return nil, err
	}
	fd, err := openTUN(name, existing)
	if err != nil {
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
	// checks CAP_NET_ADMIN first, even when it would change nothing.
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		if !isPerm(err) {
			unix.Close(fd)
			return nil, fmt.Errorf("tun: set MTU %d on %s: %w", mtu, name, err)
		}
		// wireguard's monitored constructor would fail setting the MTU;
		// the unmonitored one leaves it alone. It wraps fd in an *os.File
		// first, so on failure that file's finalizer closes fd, not us.
		dev, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
		if err != nil {
			return nil, fmt.Errorf("tun: open %s without CAP_NET_ADMIN: %w", name, err)
		}
		return dev, nil
	}
	f := os.NewFile(uintptr(fd), cloneDevice)
	dev, err := wgtun.CreateTUNFromFile(f, mtu)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tun: open %s: %w", name, err)
	}
	return dev, nil
}
