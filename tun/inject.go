package tun

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// injector writes single packets into a Device outside Write's state.
type injector struct {
	d   *Device
	fn  func(uintptr) bool // write1, bound once: a closure per call would allocate
	pkt []byte
	err error
}

// NewInjector returns a function that writes one IP packet, buf[offset:],
// into the TUN (the kernel receives it as arriving on the link), with an
// empty virtio header put into buf[offset-VirtioHdrLen:offset]. It keeps no
// state shared with Write, so one goroutine may inject while another
// Writes; one injector is for one goroutine. It is one write(2) per packet,
// for rare packets (the router's ICMP errors), and allocates nothing.
func (d *Device) NewInjector() func(buf []byte, offset int) error {
	in := &injector{d: d}
	in.fn = in.write1
	return in.inject
}

func (in *injector) inject(buf []byte, offset int) error {
	if offset < VirtioHdrLen || offset > len(buf) {
		return fmt.Errorf("tun: inject offset %d: must be between %d and the buffer's length %d", offset, VirtioHdrLen, len(buf))
	}
	clear(buf[offset-VirtioHdrLen : offset])
	in.pkt, in.err = buf[offset-VirtioHdrLen:], nil
	err := in.d.rc.Write(in.fn)
	in.pkt = nil
	if err != nil {
		return in.d.ioError(err)
	}
	return in.err
}

func (in *injector) write1(fd uintptr) bool {
	_, err := unix.Write(int(fd), in.pkt)
	if err == unix.EAGAIN {
		in.err = fmt.Errorf("tun: inject: %w", err) // a full TUN queue: the packet is dropped, never waited for
		return true
	}
	if err != nil {
		in.err = fmt.Errorf("tun: inject: %w", err)
	}
	return true
}
