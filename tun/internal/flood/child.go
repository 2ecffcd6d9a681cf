package flood

import (
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Child is the flooding child's body (a re-executed test binary calls it
// and exits with its result): it sends payload-byte UDP datagrams to dst
// (IPv4 address:port) in sendmmsg batches of 64, as fast as they go, until
// it is killed. It returns 2, having said why on stdout, if it cannot.
func Child(dst string, payload int) int {
	ap, err := netip.ParseAddrPort(dst)
	if err != nil || !ap.Addr().Is4() {
		fmt.Printf("flood: destination %q: must be an IPv4 address:port\n", dst)
		return 2
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		fmt.Println(err)
		return 2
	}
	const batch = 64
	buf := make([]byte, payload)
	iovs := make([]unix.Iovec, batch)
	msgs := make([]unix.Mmsghdr, batch)
	for i := range msgs {
		iovs[i].Base = &buf[0]
		iovs[i].SetLen(len(buf))
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), batch, 0, 0, 0)
		if e != 0 && e != unix.EINTR && e != unix.ENOBUFS && e != unix.EAGAIN {
			fmt.Println("sendmmsg:", e)
			return 2
		}
	}
}

// Start starts cmd, a test binary re-executed to run Child, kills it at
// cleanup, and gives it time to reach full speed.
func Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	time.Sleep(100 * time.Millisecond)
}
