package uring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/netns/netnstest"
	"github.com/feltnet/felt/tun/internal/flood"
)

// Addresses inside the throwaway namespace: the TUN holds tunIP; peerIP is
// routed through it.
var (
	tunIP  = [4]byte{10, 77, 0, 1}
	peerIP = [4]byte{10, 77, 0, 2}
)

const (
	vnetHdrLen = 10 // struct virtio_net_hdr, before every frame on an IFF_VNET_HDR TUN
	pktLen     = 64 // IPv4 + UDP + payload: the "64-byte packets" of the benchmarks
	payloadLen = pktLen - 28
)

// childEnv selects what a re-executed test binary does instead of testing.
const childEnv = "FELT_URING_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	// These tests are about the ring itself: FELT_IO_URING=off, with which
	// the tun package's suite is run to test its fallback, must not turn
	// them into failures (TestUnavailableByEnv sets it itself).
	os.Unsetenv(EnvSwitch)
	os.Exit(m.Run())
}

// child runs in a re-executed test binary. Exit status 0: New's error wraps
// ErrUnavailable (the line printed says which); 1: it did not; 2: setup failed.
func child(mode string) int {
	switch mode {
	case "flood":
		return flood.Child(os.Getenv("FELT_URING_DST"), payloadLen)
	case "seccomp-eperm", "seccomp-enosys":
		errno := unix.EPERM
		if mode == "seccomp-enosys" {
			errno = unix.ENOSYS
		}
		if err := denyIOUringSetup(errno); err != nil {
			fmt.Println("seccomp:", err)
			return 2
		}
	case "no-cap-sys-admin":
		// Capabilities are per thread: drop CAP_SYS_ADMIN on this one and
		// call New from it.
		runtime.LockOSThread()
		if err := dropCapSysAdmin(); err != nil {
			fmt.Println("capset:", err)
			return 2
		}
	default:
		fmt.Println("unknown child mode", mode)
		return 2
	}
	r, err := New(8)
	if err == nil {
		r.Close()
		fmt.Println("New succeeded")
		return 1
	}
	fmt.Println(err)
	if errors.Is(err, ErrUnavailable) {
		return 0
	}
	return 1
}

// denyIOUringSetup installs, on every thread, a seccomp filter that fails
// io_uring_setup with errno, as container runtimes' default profiles do.
func denyIOUringSetup(errno unix.Errno) error {
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_IO_URING_SETUP, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return e
	}
	return nil
}

func dropCapSysAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
	return unix.Capset(&hdr, &data[0])
}

// runChild re-executes the test binary in mode and returns its output and
// exit status. It starts from the calling goroutine's thread, so it joins
// that thread's network namespace.
func startChild(t testing.TB, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

func needRoot(t testing.TB) { netnstest.NeedRoot(t) }

// inThrowawayNetns moves the test's goroutine into a throwaway network
// namespace until the test ends (netnstest.Enter).
func inThrowawayNetns(t testing.TB) { netnstest.Enter(t) }

// testTUN is a TUN opened as felt opens it: IFF_VNET_HDR with checksum and
// TSO offloads, non-blocking, in the netpoller, holding tunIP/24, up.
type testTUN struct {
	name string
	fd   int      // the raw fd (never f.Fd(), which would make it blocking)
	f    *os.File // owns fd
}

// rawConn is the TUN file's syscall.RawConn, for ReadConn.
func (tt *testTUN) rawConn(t testing.TB) syscall.RawConn {
	t.Helper()
	rc, err := tt.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newTUN(t testing.TB) *testTUN {
	t.Helper()
	const name = "fur0" // the namespace is ours alone
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/net/tun: %v", err)
	}
	ifr, _ := unix.NewIfreq(name)
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Fatalf("TUNSETIFF: %v", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		unix.Close(fd)
		t.Fatalf("TUNSETOFFLOAD: %v", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	tt := &testTUN{name: name, fd: fd, f: os.NewFile(uintptr(fd), name)}
	t.Cleanup(func() { tt.f.Close() })
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(tunIP[:]), Mask: net.CIDRMask(24, 32)}}
	if err := netlink.AddrAdd(link, addr); err != nil {
		t.Fatalf("add %s to %s: %v", addr, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	return tt
}

// stats returns the TUN's counters: tx is the stack-to-reader direction.
func (tt *testTUN) stats(t testing.TB) *netlink.LinkStatistics {
	t.Helper()
	link, err := netlink.LinkByName(tt.name)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Statistics
}

// udpSocket returns a UDP socket fd bound to local (port 0: any) and, if
// remote is given, connected to it.
func udpSocket(t testing.TB, local [4]byte, lport int, remote *unix.SockaddrInet4) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: local, Port: lport}); err != nil {
		t.Fatalf("bind %v:%d: %v", local, lport, err)
	}
	if remote != nil {
		if err := unix.Connect(fd, remote); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

// fillPayload writes the test pattern for sequence number seq.
func fillPayload(p []byte, seq uint32) {
	binary.BigEndian.PutUint32(p, seq)
	for i := 4; i < len(p); i++ {
		p[i] = byte(seq) + byte(i)
	}
}

// checkPayload returns the sequence number in p or an error if the pattern
// around it is wrong.
func checkPayload(p []byte) (uint32, error) {
	if len(p) != payloadLen {
		return 0, fmt.Errorf("payload is %d bytes, want %d", len(p), payloadLen)
	}
	seq := binary.BigEndian.Uint32(p)
	for i := 4; i < len(p); i++ {
		if p[i] != byte(seq)+byte(i) {
			return seq, fmt.Errorf("payload of %d: byte %d is %#x, want %#x", seq, i, p[i], byte(seq)+byte(i))
		}
	}
	return seq, nil
}

// udpFrame writes, at the start of frame, a zero virtio_net_hdr and an
// IPv4/UDP packet src:sport -> dst:dport carrying payload (UDP checksum 0,
// which IPv4 allows), and returns the frame's length.
func udpFrame(frame []byte, src, dst [4]byte, sport, dport uint16, payload []byte) int {
	clear(frame[:vnetHdrLen])
	ip := frame[vnetHdrLen:]
	n := ipUDPHeader(ip, src, dst, sport, dport, len(payload))
	return vnetHdrLen + n + copy(ip[n:], payload)
}

// ipUDPHeader writes the 28-byte IPv4 and UDP headers of a datagram with
// payloadLen bytes of payload and returns 28.
func ipUDPHeader(h []byte, src, dst [4]byte, sport, dport uint16, payloadLen int) int {
	total := 28 + payloadLen
	h[0], h[1] = 0x45, 0
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint32(h[4:], 0) // id, flags, fragment offset
	h[8], h[9] = 64, unix.IPPROTO_UDP
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:])
	copy(h[16:20], dst[:])
	binary.BigEndian.PutUint16(h[10:], encaptest.Checksum(h[:20]))
	u := h[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+payloadLen))
	binary.BigEndian.PutUint16(u[6:], 0)
	return 28
}

// mmsgSender sends batches of datagrams on a connected socket with one
// sendmmsg(2) each, allocating nothing per batch.
type mmsgSender struct {
	fd   int
	bufs [][]byte
	iovs []unix.Iovec
	msgs []unix.Mmsghdr
}

func newMmsgSender(fd, batch, size int) *mmsgSender {
	s := &mmsgSender{fd: fd, bufs: make([][]byte, batch), iovs: make([]unix.Iovec, batch), msgs: make([]unix.Mmsghdr, batch)}
	for i := range s.bufs {
		s.bufs[i] = make([]byte, size)
		s.iovs[i].Base = &s.bufs[i][0]
		s.iovs[i].SetLen(size)
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.SetIovlen(1)
	}
	return s
}

// send sends the first n buffers and returns how many went.
func (s *mmsgSender) send(n int) (int, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(n), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// startFlood starts the flood child (payloadLen-byte datagrams to peerIP,
// routed into the TUN) in the calling thread's namespace and stops it at
// cleanup.
func startFlood(t testing.TB) {
	t.Helper()
	flood.Start(t, startChild(t, "flood", fmt.Sprintf("FELT_URING_DST=%d.%d.%d.%d:9999", peerIP[0], peerIP[1], peerIP[2], peerIP[3])))
}
