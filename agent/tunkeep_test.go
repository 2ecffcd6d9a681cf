package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/router/routertest"
)

// rebuildNode is a udp node on a fake TUN (routertest.Device) and a real
// socket on loopback, with its health server on loopback: enough to run
// the engSlot through a TUN rebuild in an unprivileged test. Its TUN name
// names no link, so tunGone reports the TUN deleted whenever the engine
// stops with an error.
func rebuildNode(t *testing.T) (*node, *routertest.Device) {
	t.Helper()
	log := zap.NewNop()
	nc := testNetConfig(t, "udp")
	own := lease.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24")}
	conn, err := encap.Listen(netip.MustParseAddrPort("127.0.0.1:0"), encap.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	dev := routertest.NewDevice(8, 64)
	p := &plane{backend: "udp", kind: packetBackend, dev: dev, conn: conn, framer: encap.NewUDP(1400), mtu: 1400}
	h, err := newHealthServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.serve(log)
	t.Cleanup(h.close)
	n := &node{cfg: Config{TUNName: fmt.Sprintf("fltnone%d", os.Getpid())}, log: log, netCfg: nc, own: own, plane: p,
		health: h, notify: notifier{log: log}}
	n.st = newState(nc, p, netip.MustParseAddr("127.0.0.1"), n.cfg.TUNName, log)
	n.st.own = own
	n.peers = newPeerSet(nc, own, log)
	return n, dev
}

// get returns the status code and body of GET path on the node's health
// server (from a fresh goroutine: any thread will do).
func get(t *testing.T, n *node, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.health.Addr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func statusCounters(t *testing.T, n *node) map[string]uint64 {
	t.Helper()
	code, body := get(t, n, "/status")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil {
		t.Fatalf("/status: %d %v: %s", code, err, body)
	}
	return s.Counters
}

// unleasedPacket is an IPv4 UDP packet from the own subnet to an overlay
// address no lease holds, as the fake TUN hands it to the engine.
func unleasedPacket() []byte {
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 5, 1, 2, 10, 5, 99, 9,
		0x30, 0x39, 0, 9, 0, 8, 0, 0}
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	ip[10], ip[11] = byte(^sum>>8), byte(^sum)
	return ip
}

// TestTUNRebuildCountersReadinessMemory: when the engine stops because its
// TUN is gone, the node is not ready (/readyz 503) until the new engine is
// in; /status's counters go on from the old engine's totals instead of
// starting at zero; and the old engine is released (not kept by a closer
// for each rebuild).
func TestTUNRebuildCountersReadinessMemory(t *testing.T) {
	n, dev := rebuildNode(t)
	view, err := n.newForwarder()
	if err != nil {
		t.Fatal(err)
	}
	n.attachHealth(view)
	slot := n.eng.(paths).tunnel.(*engSlot)
	closers := len(n.closers)

	during, next := stubRebuild(t, n, slot)
	n.markReady()

	old := slot.current()
	collected := make(chan struct{})
	runtime.AddCleanup(old, func(c chan struct{}) { close(c) }, collected)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- slot.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		n.close()
	}()

	const sent = 5
	for range sent {
		if err := dev.Inject(unleasedPacket()); err != nil {
			t.Fatal(err)
		}
	}
	waitCounter(t, n, "drop_no_route", sent)
	before := statusCounters(t, n)["drop_no_route"]

	dev.FailReads(os.ErrClosed) // the TUN is gone
	dev.Inject(unleasedPacket())
	waitRebuilt(t, slot, old)
	old = nil
	if *during != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the TUN rebuild: %d, want 503", *during)
	}
	if code, body := get(t, n, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the TUN rebuild: %d %s, want 200", code, body)
	}
	if after := statusCounters(t, n)["drop_no_route"]; after < before {
		t.Errorf("/status drop_no_route went from %d to %d across the TUN rebuild: counters must not start again", before, after)
	}
	if err := (*next).Inject(unleasedPacket()); err != nil {
		t.Fatal(err)
	}
	waitCounter(t, n, "drop_no_route", before+1)
	if len(n.closers) != closers {
		t.Errorf("%d closers after one TUN rebuild, %d before: each rebuild keeps its engine", len(n.closers), closers)
	}
	waitCollected(t, collected, "the engine before the TUN rebuild")
}

// stubRebuild makes slot's rebuild put a fake TUN (*next) and a loopback
// socket under a new engine, recording the /readyz status seen while it
// runs (*during).
func stubRebuild(t *testing.T, n *node, slot *engSlot) (during *int, next **routertest.Device) {
	during, next = new(int), new(*routertest.Device)
	slot.rebuild = func() (*router.Engine, error) {
		done := make(chan int)
		go func() { c, _ := get(t, n, "/readyz"); done <- c }()
		*during = <-done
		*next = routertest.NewDevice(8, 64)
		conn, err := encap.Listen(netip.MustParseAddrPort("127.0.0.1:0"), encap.DefaultOptions())
		if err != nil {
			return nil, err
		}
		n.plane.dev, n.plane.conn = *next, conn
		return n.newEngine(n.st.current())
	}
	return during, next
}

// waitRebuilt waits (a liveness bound) until slot runs an engine other
// than old.
func waitRebuilt(t *testing.T, slot *engSlot, old *router.Engine) {
	for i := 0; slot.current() == old; i++ {
		if i == 1000 {
			t.Fatal("no TUN rebuild after the engine's TUN failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCollected runs the GC until collected closes (a runtime.AddCleanup
// of what), failing after 10 s: something still references it.
func waitCollected(t *testing.T, collected <-chan struct{}, what string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Errorf("%s is still reachable after 10 s of GCs: something keeps it", what)
			return
		}
	}
}

// waitCounter waits (up to a generous bound: this is no timing assertion)
// until /status's counter name reaches want.
func waitCounter(t *testing.T, n *node, name string, want uint64) {
	t.Helper()
	for i := 0; ; i++ {
		c := statusCounters(t, n)
		if c[name] >= want {
			return
		}
		if i == 1000 {
			t.Errorf("/status %s stays below %d: %v", name, want, c)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
