package tun

import (
	"strings"
	"testing"
)

// paths are the device's two I/O paths, for tests and benchmarks that run
// on each. (The rest of the suite runs on the default path; run it again
// with FELT_IO_URING=off for the other.)
var paths = []struct {
	name string
	opts Options
}{
	{"io_uring", Options{IOUring: true, IOUringReads: true}},
	{"read-writev", Options{IOUring: false}},
}

// forEachPath runs f as a subtest per I/O path; the io_uring one is skipped
// where io_uring is unavailable.
func forEachPath[T testing.TB](t T, f func(T, Options)) {
	for _, p := range paths {
		run := func(t T) {
			f(t, p.opts)
		}
		switch tb := any(t).(type) {
		case *testing.T:
			tb.Run("path="+p.name, func(t *testing.T) { run(any(t).(T)) })
		case *testing.B:
			tb.Run("path="+p.name, func(b *testing.B) { run(any(b).(T)) })
		}
	}
}

// configuredWith is configured with opts; it fails (or skips, for io_uring
// where it is unavailable) when the device did not take the path asked for.
func configuredWith(t testing.TB, letter string, opts Options) (*Device, string) {
	t.Helper()
	name := devName(letter)
	d, err := CreateWith(name, 1420, opts)
	if err != nil {
		t.Fatalf("CreateWith(%s): %v", name, err)
	}
	t.Cleanup(func() { d.Close() })
	path := d.IOPath()
	if opts.IOUring && path != IOPathUring {
		t.Skipf("io_uring path not available: %s", path)
	}
	if !opts.IOUring && !strings.HasPrefix(path, IOPathSyscalls) {
		t.Fatalf("IOPath %q with IOUring off", path)
	}
	configureTest(t, d, name)
	return d, name
}
