package tun

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// childEnv makes a re-executed test binary do a helper's job (see TestMain)
// instead of testing.
const childEnv = "FELT_TUN_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	switch mode {
	case "flood":
		return flood(os.Getenv("FELT_TUN_FLOOD_DST"))
	}
	fmt.Println("unknown child mode", mode)
	return 2
}

// floodPayload makes the flood's packets 64 bytes: 20 IPv4 + 8 UDP + 36.
const floodPayload = 36

// flood sends floodPayload-byte datagrams to dst with sendmmsg batches of 64,
// as fast as it goes, until it is killed.
func flood(dst string) int {
	ap, err := netip.ParseAddrPort(dst)
	if err != nil {
		fmt.Println(err)
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
	buf := make([]byte, floodPayload)
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

// startFlood starts the flood child toward dst (routed into the TUN) in the
// calling thread's network namespace and stops it at cleanup.
func startFlood(t testing.TB, dst string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=flood", "FELT_TUN_FLOOD_DST="+dst)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	time.Sleep(100 * time.Millisecond) // let it reach full speed
}

// tunTx returns the TUN's counters in the stack-to-reader direction:
// packets handed to the reader's queue and packets dropped at it.
func tunTx(t testing.TB, name string) (packets, dropped uint64) {
	t.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	s := link.Attrs().Statistics
	return s.TxPackets, s.TxDropped
}
