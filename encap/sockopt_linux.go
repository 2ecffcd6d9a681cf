//go:build linux

package encap

import (
	"fmt"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// setSockopts sizes the socket buffers and turns on GSO and GRO where the
// kernel supports them. Only a buffer size the kernel refuses outright is an
// error; missing offloads are logged and left off.
func (c *Conn) setSockopts(fd int, o Options) error {
	for _, b := range [...]struct {
		force, plain int
		name         string
	}{
		{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, "SO_RCVBUF"},
		{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, "SO_SNDBUF"},
	} {
		// FORCE needs CAP_NET_ADMIN; the plain option is capped by net.core.[rw]mem_max.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, b.force, o.SocketBuffer) == nil {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, b.plain, o.SocketBuffer); err != nil {
			return fmt.Errorf("set %s to %d bytes: %w", b.name, o.SocketBuffer, err)
		}
		c.log.Debug("socket buffer capped by sysctl (no CAP_NET_ADMIN for the FORCE option)",
			zap.String("option", b.name), zap.Int("asked", o.SocketBuffer))
	}
	if c.family == unix.AF_INET || c.dual { // a dual-stack socket's IPv4 traffic alike
		// Path MTU: the kernel's default (IP_PMTUDISC_WANT) sets DF and takes the
		// MTU from any ICMP "fragmentation needed" that quotes a datagram of ours,
		// or of any other socket to the same host: route exceptions are per
		// destination, for 10 minutes. Sends then use that MTU, and a GSO run
		// whose segments exceed it is refused (udp_send_skb: EMSGSIZE), so one
		// spoofed ICMP holds back GSO toward a peer. felt's overlay MTU is the
		// underlay interface's less the encapsulation (as flanneld sets
		// flannel.1), so every datagram fits the first hop. OMIT makes the socket
		// ignore ICMP-learned MTUs (ipv4_sk_update_pmtu returns early,
		// ip_setup_cork takes the device MTU) and clear DF, fragmenting locally
		// only above the device MTU. That is how kernel VXLAN, the flanneld data
		// path, sends: no DF unless "df set", which flanneld never asks for, so a
		// smaller link further on fragments our datagrams instead of dropping
		// them; real "fragmentation needed" messages do not come for datagrams
		// without DF, and spoofed ones change nothing. IPv6 keeps the default:
		// IPv6 routers never fragment, so ignoring "packet too big" would
		// black-hole large datagrams; there the kernel clamps the MTU to at
		// least 1280 and a refusal holds back only that peer (write_linux.go).
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_OMIT); err != nil {
			c.log.Warn("cannot make the socket ignore icmp path mtu updates (IP_PMTUDISC_OMIT); a spoofed icmp can hold back gso toward one peer", zap.Error(err))
		}
	}
	if o.noChecksum {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NO_CHECK, 1); err != nil {
			return fmt.Errorf("set SO_NO_CHECK: %w", err)
		}
	}
	if o.GRO {
		if err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
			c.log.Info("udp gro unavailable, receiving datagrams one by one", zap.Error(err))
		} else {
			c.gro = true
		}
	}
	if o.GSO {
		var uts unix.Utsname
		release := ""
		if unix.Uname(&uts) == nil {
			release = unix.ByteSliceToString(uts.Release[:])
		}
		switch {
		case gsoKernelBroken(release):
			c.log.Warn("udp gso off: this kernel has a known UDP GSO corruption bug (7.0 - 7.1.4)", zap.String("kernel", release))
		default:
			// Kernels without UDP_SEGMENT (before 4.18) answer ENOPROTOOPT.
			if _, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT); err != nil {
				c.log.Info("udp gso unavailable, sending datagrams one by one", zap.Error(err))
			} else {
				c.gso.Store(true)
			}
		}
	}
	return nil
}

// gsoKernelBroken reports whether release (uname -r) is a kernel from 7.0 up
// to 7.1.4, whose UDP GSO can corrupt data. An unparsable release is trusted.
func gsoKernelBroken(release string) bool {
	var v [3]int
	i := 0
scan:
	for _, ch := range release {
		switch {
		case ch >= '0' && ch <= '9':
			v[i] = v[i]*10 + int(ch-'0')
		case ch == '.' && i < 2:
			i++
		default:
			break scan
		}
	}
	if i == 0 {
		return false
	}
	return v[0] == 7 && (v[1] == 0 || v[1] == 1 && v[2] <= 4)
}
