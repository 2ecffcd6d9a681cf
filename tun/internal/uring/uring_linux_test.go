package uring

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func newRing(t testing.TB, entries int) *Ring {
	t.Helper()
	r, err := New(entries)
	if err != nil {
		t.Fatalf("New(%d): %v", entries, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestNewRejectsBadEntries(t *testing.T) {
	for _, n := range []int{0, -1, MaxEntries + 1} {
		_, err := New(n)
		if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "entries "+strconv.Itoa(n)) {
			t.Errorf("New(%d) = %v, want an error naming entries %d and not ErrUnavailable", n, err, n)
		}
	}
}

func TestNewEntriesRounded(t *testing.T) {
	r := newRing(t, 48)
	if r.Entries() != 64 {
		t.Errorf("Entries() = %d after New(48), want 64", r.Entries())
	}
}

func TestUnavailableByEnv(t *testing.T) {
	t.Setenv(EnvSwitch, "off")
	r, err := New(8)
	if !errors.Is(err, ErrUnavailable) || r != nil {
		t.Fatalf("New with %s=off = %v, %v; want nil, ErrUnavailable", EnvSwitch, r, err)
	}
	if !strings.Contains(err.Error(), EnvSwitch) {
		t.Errorf("error %q does not say why", err)
	}
}

func TestSetupErrorClassified(t *testing.T) {
	for _, e := range []unix.Errno{unix.ENOSYS, unix.EPERM, unix.EACCES} {
		err := setupError(e)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, e) {
			t.Errorf("setupError(%v) = %v: want ErrUnavailable wrapping the errno", e, err)
		}
	}
	for _, e := range []unix.Errno{unix.EMFILE, unix.ENOMEM, unix.EINVAL} {
		if err := setupError(e); errors.Is(err, ErrUnavailable) || !errors.Is(err, e) {
			t.Errorf("setupError(%v) = %v: want the errno, not ErrUnavailable", e, err)
		}
	}
}

// TestMissingOpcode feeds checkOps the probe answers of kernels without one
// of the opcodes (a unit test: no kernel here lacks them).
func TestMissingOpcode(t *testing.T) {
	all := func() *probe {
		var p probe
		p.lastOp, p.opsLen = 60, 61
		for i := range p.ops[:61] {
			p.ops[i].op, p.ops[i].flags = uint8(i), probeOpSupported
		}
		return &p
	}
	if err := checkOps(all()); err != nil {
		t.Fatalf("checkOps(everything) = %v", err)
	}
	p := all()
	p.ops[opWritev].flags = 0
	if err := checkOps(p); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "IORING_OP_WRITEV") {
		t.Errorf("without WRITEV: %v", err)
	}
	p = all()
	p.opsLen = opRead // a 5.5-era list that stops before READ
	if err := checkOps(p); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "IORING_OP_READ") {
		t.Errorf("short op list: %v", err)
	}
}

// setSysctl sets kernel.io_uring_disabled and restores it at cleanup, also
// when the test fails.
func setIOUringDisabled(t *testing.T, v string) {
	t.Helper()
	needRoot(t)
	const path = "/proc/sys/kernel/io_uring_disabled"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Errorf("restore %s to %s: %v", path, strings.TrimSpace(string(old)), err)
		}
	})
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		t.Fatalf("set %s to %s: %v", path, v, err)
	}
}

func TestUnavailableWhenDisabled(t *testing.T) {
	t.Run("2 for everyone", func(t *testing.T) {
		setIOUringDisabled(t, "2")
		r, err := New(8)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, unix.EPERM) {
			if r != nil {
				r.Close()
			}
			t.Fatalf("New with kernel.io_uring_disabled=2: %v; want ErrUnavailable (EPERM)", err)
		}
	})
	t.Run("1 without CAP_SYS_ADMIN", func(t *testing.T) {
		setIOUringDisabled(t, "1")
		// Root keeps io_uring under 1 ...
		r, err := New(8)
		if err != nil {
			t.Fatalf("New as root with kernel.io_uring_disabled=1: %v", err)
		}
		r.Close()
		// ... a process without CAP_SYS_ADMIN (outside io_uring_group) does not.
		expectChildUnavailable(t, "no-cap-sys-admin", "operation not permitted")
	})
}

func TestUnavailableUnderSeccomp(t *testing.T) {
	needRoot(t)
	expectChildUnavailable(t, "seccomp-eperm", "operation not permitted")
	expectChildUnavailable(t, "seccomp-enosys", "function not implemented")
}

func expectChildUnavailable(t *testing.T, mode, want string) {
	t.Helper()
	out, err := startChild(t, mode).Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("child %s: %v", mode, err)
	}
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("child %s: %v, output %q; want ErrUnavailable mentioning %q", mode, err, out, want)
	}
}

func TestCloseIdle(t *testing.T) {
	r, err := New(8)
	if err != nil {
		t.Fatal(err)
	}
	fd := r.fd
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("ring fd %d still open after Close (fcntl: %v)", fd, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Write(1, [][]byte{{1}}, nil); err != ErrClosed {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := r.Read(0, [][]byte{{1}}, []int{0}); err != ErrClosed {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
}

func TestConcurrentUsePanics(t *testing.T) {
	r := newRing(t, 8)
	r.state.Store(busy) // as if another goroutine were inside
	defer func() {
		r.state.Store(idle)
		if recover() == nil {
			t.Error("a second user of a busy Ring did not panic")
		}
	}()
	r.Write(1, [][]byte{{1}}, nil)
}

func pipe(t *testing.T, flags int) (rd, wr int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], flags|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func TestBadArguments(t *testing.T) {
	r := newRing(t, 8)
	rd, wr := pipe(t, unix.O_NONBLOCK)
	buf := make([]byte, 16)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"short sizes", second(r.Read(rd, [][]byte{buf, buf}, make([]int, 1))), "len(sizes) 1"},
		{"empty buffer", second(r.Read(rd, [][]byte{buf, nil}, make([]int, 2))), "len(bufs[1]) 0"},
		{"empty packet", second(r.Write(wr, [][]byte{buf, {}}, nil)), "len(pkts[1]) 0"},
		{"short res", second(r.Write(wr, [][]byte{buf, buf}, make([]int, 1))), "len(res) 1"},
		{"no iovecs", second(r.Writev(wr, [][]unix.Iovec{nil}, nil)), "len(pkts[0]) 0 iovecs"},
		{"too many iovecs", second(r.Writev(wr, [][]unix.Iovec{make([]unix.Iovec, MaxIovecs+1)}, nil)), "1025 iovecs"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, c.err, c.want)
		}
	}
	// Nothing was submitted for them: the ring still works. An empty
	// pipe answers EAGAIN at once, also a blocking one (RWF_NOWAIT).
	if _, err := r.Read(rd, [][]byte{buf}, []int{0}); err != unix.EAGAIN {
		t.Errorf("Read on an empty pipe: %v, want EAGAIN", err)
	}
	brd, _ := pipe(t, 0)
	if _, err := r.Read(brd, [][]byte{buf}, []int{0}); err != unix.EAGAIN {
		t.Errorf("Read on an empty blocking pipe: %v, want EAGAIN", err)
	}
	if n, err := r.Write(wr, [][]byte{[]byte("ab"), []byte("cd")}, nil); n != 2 || err != nil {
		t.Errorf("Write to a pipe: %d, %v", n, err)
	}
	sizes := make([]int, 2)
	if n, err := r.Read(rd, [][]byte{buf, make([]byte, 16)}, sizes); n != 1 || err != nil || string(buf[:sizes[0]]) != "abcd" {
		t.Errorf("Read from the pipe: %d, %v, %q; want 1 buffer with abcd", n, err, buf[:sizes[0]])
	}
}

func second(_ int, err error) error { return err }
