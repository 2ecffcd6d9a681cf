package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/feltnet/felt/netns/netnstest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces, veths and bridges (the rootless path is TestRootlessLab)")
	}
}

// labName is unique per test process and letter: others run tests on this
// machine at the same time.
func labName(letter string) string { return fmt.Sprintf("fns%d%s", os.Getpid(), letter) }

// underlay picks a /24 per test letter, away from the common 10.0-10.200.
func underlay(letter string) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 201+os.Getpid()%50, letter[0]))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newLab(t *testing.T, c LabConfig) *Lab {
	t.Helper()
	l, err := NewLab(testCtx(t), c)
	if err != nil {
		t.Fatalf("NewLab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// ping checks that from reaches addr (a few tries: the first one waits for
// ARP; no timing is asserted).
func ping(t *testing.T, from *Host, addr netip.Addr) {
	t.Helper()
	out, err := from.Command(testCtx(t), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "3", addr.String()).CombinedOutput()
	if err != nil {
		t.Errorf("ping %s from %s: %v\n%s", addr, from.Name, err, out)
	}
}

// leftovers lists the namespaces, and the links of the current namespace,
// whose names start with prefix.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	nss, err := namespaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if strings.HasPrefix(ns, prefix) {
			out = append(out, "netns "+ns)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			out = append(out, "link "+l.Attrs().Name)
		}
	}
	return out
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// cmdOut is netnstest.Output: a command's output, or the test fails.
func cmdOut(t *testing.T, name string, args ...string) string {
	return netnstest.Output(t, name, args...)
}

func itoa(i int) string { return fmt.Sprint(i) }
