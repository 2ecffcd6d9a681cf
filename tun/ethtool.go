package tun

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtool ioctl commands and string sets (linux/ethtool.h).
const (
	ethtoolGStrings  = 0x1b
	ethtoolGSSetInfo = 0x37
	ethtoolGFeatures = 0x3a
	ethSSFeatures    = 4
	ethGStringLen    = 32
)

// ifreqData is struct ifreq with the ifr_data pointer member.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// features returns the active state of every netdev feature of the link,
// keyed by ethtool's names. It needs no privilege.
func features(name string) (map[string]bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tun: ethtool socket: %w", err)
	}
	defer unix.Close(fd)

	// struct ethtool_sset_info with one data word.
	info := struct {
		cmd, _   uint32
		mask     uint64
		count    uint32
		_padding uint32
	}{cmd: ethtoolGSSetInfo, mask: 1 << ethSSFeatures}
	if err := ethtool(fd, name, unsafe.Pointer(&info)); err != nil {
		return nil, fmt.Errorf("tun: ethtool feature count of %s: %w", name, err)
	}
	n := int(info.count)

	// struct ethtool_gstrings followed by n names of 32 bytes.
	sbuf := make([]byte, 12+n*ethGStringLen)
	*(*[3]uint32)(unsafe.Pointer(&sbuf[0])) = [3]uint32{ethtoolGStrings, ethSSFeatures, uint32(n)}
	if err := ethtool(fd, name, unsafe.Pointer(&sbuf[0])); err != nil {
		return nil, fmt.Errorf("tun: ethtool feature names of %s: %w", name, err)
	}

	// struct ethtool_gfeatures followed by blocks of {available, requested,
	// active, never_changed}, one block per 32 features.
	blocks := (n + 31) / 32
	fbuf := make([]uint32, 2+4*blocks)
	fbuf[0], fbuf[1] = ethtoolGFeatures, uint32(blocks)
	if err := ethtool(fd, name, unsafe.Pointer(&fbuf[0])); err != nil {
		return nil, fmt.Errorf("tun: ethtool features of %s: %w", name, err)
	}

	out := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		raw := sbuf[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		key := unix.ByteSliceToString(raw)
		if key == "" {
			continue
		}
		active := fbuf[2+4*(i/32)+2]
		out[key] = active&(1<<(i%32)) != 0
	}
	return out, nil
}

func ethtool(fd int, name string, data unsafe.Pointer) error {
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	ifr.data = data
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ifr)
	if errno != 0 {
		return errno
	}
	return nil
}
