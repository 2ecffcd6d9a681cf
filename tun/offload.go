package tun

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Offloads says which offloads a TUN device has on, as the kernel sees them.
type Offloads struct {
	// VnetHdr: the fd carries a virtio_net_hdr, so segmentation offload can
	// be on at all.
	VnetHdr bool
	// TSO: reads return TCP super-packets (up to 64 KiB) that Device.Read
	// splits; Device.Write may hand over coalesced TCP runs.
	TSO bool
	// USO: the same for UDP (Linux 6.2 and later).
	USO bool
	// Checksum: the kernel may hand over packets with a partial checksum.
	Checksum bool
}

func (o Offloads) String() string {
	return fmt.Sprintf("vnet_hdr=%t tso=%t uso=%t csum=%t", o.VnetHdr, o.TSO, o.USO, o.Checksum)
}

// Offloads reads the device's offload state from its fd flags and from the
// kernel's feature bits for its link (what `ethtool -k` shows).
func (d *Device) Offloads() (Offloads, error) {
	var o Offloads
	name, rc := d.name, d.rc
	var flags uint16
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			ioErr = err
			return
		}
		if ioErr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); ioErr == nil {
			flags = ifr.Uint16()
		}
	}); err != nil {
		return o, fmt.Errorf("tun: offloads of %s: %w", name, err)
	}
	if ioErr != nil {
		return o, fmt.Errorf("tun: TUNGETIFF on %s: %w", name, ioErr)
	}
	o.VnetHdr = flags&unix.IFF_VNET_HDR != 0
	feats, err := features(name)
	if err != nil {
		return o, err
	}
	o.TSO = feats["tx-tcp-segmentation"]
	o.USO = feats["tx-udp-segmentation"]
	o.Checksum = feats["tx-checksum-ip-generic"]
	return o, nil
}
