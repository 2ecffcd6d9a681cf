package agent

import (
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
)

// TestOpenQueues in a throwaway namespace: 2 queues make felt0 multi-queue
// with 2 sockets on one port; an idle single-queue felt0 left by an older
// felt is recreated multi-queue, with a log line; one held by another
// process falls back to 1 queue with a log line (and then fails to attach,
// as before queues); --queues 1 on a multi-queue felt0 attaches one queue.
func TestOpenQueues(t *testing.T) {
	inNewNetns(t, func() {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Errorf("lo up: %v %s", err, out)
			return
		}
		open := func(name string, want int) (int, string, error) { return openAndClose(t, name, want) }
		defer tun.Remove("mq0")
		defer tun.Remove("mq1")

		if n, _, err := open("mq0", 2); n != 2 || err != nil {
			t.Errorf("new TUN, 2 queues: %d, %v", n, err)
		}
		if mq, err := tun.IsMultiQueue("mq0"); !mq || err != nil {
			t.Errorf("mq0 not made multi-queue (persistent): %v, %v", mq, err)
		}
		if n, _, err := open("mq0", 1); n != 1 || err != nil {
			t.Errorf("multi-queue TUN, --queues 1: %d, %v", n, err)
		}

		if out, err := exec.Command("ip", "tuntap", "add", "dev", "mq1", "mode", "tun", "vnet_hdr").CombinedOutput(); err != nil {
			t.Errorf("ip tuntap add: %v %s", err, out)
			return
		}
		held, err := tun.CreateWith("mq1", 0, tun.DefaultOptions())
		if err != nil {
			t.Errorf("hold mq1: %v", err)
			return
		}
		n, logs, err := open("mq1", 2)
		if err == nil || !strings.Contains(err.Error(), "already open") || !strings.Contains(logs, "running 1 queue") {
			t.Errorf("single-queue TUN in use, 2 queues: %d, %v; logs:\n%s", n, err, logs)
		}
		held.Close()
		n, logs, err = open("mq1", 2)
		if n != 2 || err != nil || !strings.Contains(logs, "recreate it multi-queue") {
			t.Errorf("idle single-queue TUN, 2 queues: %d, %v; logs:\n%s", n, err, logs)
		}
	})
}

// openAndClose runs openQueues for want queues of the TUN name on a
// loopback port, checks the sockets share it, closes everything and returns
// how many queues it got and what it logged.
func openAndClose(t *testing.T, name string, want int) (int, string, error) {
	core, logs := observer.New(zap.InfoLevel)
	listenErr := func(err error) error { return fmt.Errorf("listen: %w", err) }
	devs, conns, err := openQueues(netip.MustParseAddrPort("127.0.0.1:0"), name, 1400, want, zap.New(core), encap.Listen, listenErr)
	var lines []string
	for _, e := range logs.All() {
		lines = append(lines, e.Message)
	}
	if err != nil {
		return 0, strings.Join(lines, "\n"), err
	}
	for i := range devs {
		if i > 0 && conns[i].LocalAddr() != conns[0].LocalAddr() {
			t.Errorf("%s: socket %d on %s, socket 0 on %s", name, i, conns[i].LocalAddr(), conns[0].LocalAddr())
		}
		devs[i].Close()
		conns[i].Close()
	}
	if len(devs) != len(conns) {
		t.Errorf("%s: %d TUN queues, %d sockets", name, len(devs), len(conns))
	}
	return len(devs), strings.Join(lines, "\n"), nil
}

// TestModerationNeedsTwoPsPerQueue in a throwaway namespace: read
// moderation's sleep holds its loop's P, so the TUN gets it only where the
// process has two Ps per queue (the device logs it at creation).
func TestModerationNeedsTwoPsPerQueue(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	inNewNetns(t, func() {
		defer tun.Remove("mq2")
		for _, tc := range []struct {
			procs int
			want  time.Duration
		}{{1, 0}, {2, tun.DefaultOptions().Moderate}} {
			runtime.GOMAXPROCS(tc.procs)
			core, logs := observer.New(zap.InfoLevel)
			listenErr := func(err error) error { return err }
			devs, conns, err := openQueues(netip.MustParseAddrPort("127.0.0.1:0"), "mq2", 1400, 1, zap.New(core), encap.Listen, listenErr)
			if err != nil {
				t.Errorf("GOMAXPROCS %d: %v", tc.procs, err)
				return
			}
			devs[0].Close()
			conns[0].Close()
			e := logs.FilterMessageSnippet("TUN I/O path").All()
			if len(e) != 1 || e[0].ContextMap()["read_moderation"] != tc.want {
				t.Errorf("GOMAXPROCS %d, 1 queue: %v, want read_moderation %v", tc.procs, e, tc.want)
			}
		}
	})
}

// TestLingerNeedsTwoPsPerQueue: a lingering loop holds its P, so the engine
// lingers only where the process has two Ps per queue; a FELT_LINGER it
// cannot take is reported.
func TestLingerNeedsTwoPsPerQueue(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv(router.LingerEnv, "50")
	for _, tc := range []struct {
		procs, queues int
		want          time.Duration
	}{{1, 1, 0}, {2, 1, 50 * time.Microsecond}, {2, 2, 0}, {4, 2, 50 * time.Microsecond}} {
		runtime.GOMAXPROCS(tc.procs)
		core, logs := observer.New(zap.WarnLevel)
		if got := lingerFor(tc.queues, zap.New(core)); got != tc.want {
			t.Errorf("GOMAXPROCS %d, %d queues: linger %v, want %v", tc.procs, tc.queues, got, tc.want)
		}
		if off := logs.FilterMessageSnippet("lingering off").Len(); (off == 1) != (tc.want == 0) {
			t.Errorf("GOMAXPROCS %d, %d queues: %d warnings that lingering is off", tc.procs, tc.queues, off)
		}
	}
	t.Setenv(router.LingerEnv, "lots")
	core, logs := observer.New(zap.WarnLevel)
	if got := lingerFor(1, zap.New(core)); got != router.DefaultLinger {
		t.Errorf("%s=lots: linger %v, want the default %v", router.LingerEnv, got, router.DefaultLinger)
	}
	if e := logs.FilterMessageSnippet("ignoring a bad environment variable").All(); len(e) != 1 || !strings.Contains(e[0].ContextMap()["error"].(string), router.LingerEnv) {
		t.Errorf("%s=lots: warnings %v, want one naming the variable", router.LingerEnv, e)
	}
}
