package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Host is a network namespace of a lab: a host on the underlay, or a
// container made by AddContainer.
type Host struct {
	Name  string     // namespace name (`ip netns exec Name ...`)
	Addr  netip.Addr // underlay address (a container's own address)
	Iface string     // the underlay interface inside the namespace

	lab *Lab
}

// Command returns a command that runs name inside the host's namespace. The
// caller runs and waits for it; for background processes use Start.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Do runs fn on a locked OS thread inside the host's namespace and returns
// its error. Sockets and links fn creates stay in the namespace; goroutines
// fn starts do not run in it.
func (h *Host) Do(fn func() error) error {
	return doIn(filepath.Join(netnsDir, h.Name), fn)
}

// DialContext connects to addr (an IP literal and port) from inside the
// host's namespace, as net.Dialer.DialContext does: ctx bounds the connect,
// not the connection. The socket stays in the namespace, so the connection
// reaches what only the host reaches (its loopback, its overlay). The
// signature is http.Transport.DialContext's.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := h.Do(func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

const netnsDir = "/run/netns"

// Throwaway runs fn on a locked OS thread inside a new, unnamed network
// namespace (a loopback device, down, and nothing else) and returns fn's
// error. Processes fn starts on that thread (os/exec) begin in the
// namespace; goroutines fn starts do not. The namespace vanishes when fn
// returns, unless a process or socket made in it is still open.
func Throwaway(fn func() error) error {
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: new namespace: %w", err)
		}
		return nil
	}, fn)
}

func doIn(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("netns: open namespace: %w", err)
	}
	defer target.Close()
	return onThread(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: enter %s: %w", path, err)
		}
		return nil
	}, fn)
}

// onThread runs fn on a locked OS thread whose network namespace enter has
// switched, then switches the thread back to the caller's namespace.
func onThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine, so that a thread that cannot switch back dies with
	// it instead of carrying the wrong namespace back to the caller.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open own namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- ferr // thread stays locked and ends with this goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
