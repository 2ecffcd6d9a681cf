//go:build linux

package encap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feltnet/felt/netns/netnstest"
)

// lossGuard bounds how long a test waits for datagrams it sent over
// loopback; it only turns a lost datagram into a failure instead of a hang.
const lossGuard = 20 * time.Second

func listenT(t testing.TB, addr string, o Options) *Conn {
	t.Helper()
	c, err := Listen(netip.MustParseAddrPort(addr), o)
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func plainOptions() Options {
	o := DefaultOptions()
	o.GSO, o.GRO = false, false
	return o
}

// dialable turns a wildcard-bound address into one a peer can send to.
func dialable(a netip.AddrPort) netip.AddrPort {
	if a.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a.Port())
	}
	return a
}

func newBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// readAll reads from rx into bufs at Headroom until want datagrams have
// arrived. It allocates nothing unless it fails (the zero-allocation tests
// run it).
func readAll(rx *Conn, bufs [][]byte, sizes []int, from []netip.AddrPort, want int) error {
	for got := 0; got < want; {
		k, err := rx.ReadBatch(bufs, sizes, from, Headroom)
		if err != nil {
			return fmt.Errorf("after %d of %d datagrams: %w", got, want, err)
		}
		got += k
	}
	return nil
}

// cycleAllocs is the allocations per cycle of tx.WriteBatch(pkts, addrs)
// followed by read, which must take every datagram back; a cycle that
// fails fails the test.
func cycleAllocs(t *testing.T, runs int, tx *Conn, pkts [][]byte, addrs []netip.AddrPort, read func() error) float64 {
	t.Helper()
	var failed error
	allocs := testing.AllocsPerRun(runs, func() {
		if failed = tx.WriteBatch(pkts, addrs); failed == nil {
			failed = read()
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	return allocs
}

// received is one datagram as a receiver goroutine saw it.
type received struct {
	data []byte
	from netip.AddrPort
}

// collector reads from c until it is closed, keeping a copy of everything.
type collector struct {
	mu     sync.Mutex
	got    []received
	trains uint64        // the Conn's GRO trains split so far
	more   chan struct{} // pinged after each batch
	done   chan error
}

func collect(c *Conn, offset int) *collector {
	col := &collector{more: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		bufs := newBufs(c.BatchSize(), offset+MaxDatagram)
		sizes := make([]int, len(bufs))
		addrs := make([]netip.AddrPort, len(bufs))
		for {
			n, err := c.ReadBatch(bufs, sizes, addrs, offset)
			if err != nil {
				col.done <- err
				return
			}
			col.mu.Lock()
			for i := range n {
				col.got = append(col.got, received{bytes.Clone(bufs[i][offset : offset+sizes[i]]), addrs[i]})
			}
			col.trains = c.rd.trainsSplit
			col.mu.Unlock()
			select {
			case col.more <- struct{}{}:
			default:
			}
		}
	}()
	return col
}

func (col *collector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return len(col.got)
}

func (col *collector) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(lossGuard)
	for col.count() < n {
		select {
		case <-col.more:
		case err := <-col.done:
			t.Fatalf("receiver stopped after %d of %d datagrams: %v", col.count(), n, err)
		case <-deadline:
			t.Fatalf("only %d of %d datagrams arrived: lost on loopback", col.count(), n)
		}
	}
}

// payload is datagram seq of flow dst: a header naming both, then a pattern.
func payload(dst, seq, size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(dst*31 + seq*7 + i)
	}
	if size >= 6 {
		binary.BigEndian.PutUint16(p[0:2], uint16(dst))
		binary.BigEndian.PutUint32(p[2:6], uint32(seq))
	}
	return p
}

// loopbackPair listens on two loopback Conns with options o and returns
// them with n datagrams of size bytes (payload's, one flow) addressed from
// tx to rx.
func loopbackPair(tb testing.TB, o Options, n, size int) (tx, rx *Conn, pkts [][]byte, addrs []netip.AddrPort) {
	tx = listenT(tb, "127.0.0.1:0", o)
	rx = listenT(tb, "127.0.0.1:0", o)
	pkts = make([][]byte, n)
	addrs = make([]netip.AddrPort, n)
	for i := range pkts {
		pkts[i] = payload(0, i, size)
		addrs[i] = rx.LocalAddr()
	}
	return tx, rx, pkts, addrs
}

func TestRoundTrip(t *testing.T) {
	fallback := DefaultOptions()
	fallback.noChecksum = true // the kernel refuses UDP_SEGMENT on such a socket
	for _, mode := range []struct {
		name string
		o    Options
	}{
		{"gso_gro", DefaultOptions()},
		{"plain", plainOptions()},
		{"gso_fallback", fallback},
	} {
		t.Run(mode.name, func(t *testing.T) {
			tx := listenT(t, "127.0.0.1:0", mode.o)
			// One receiver wildcard-bound like a kernel vxlan device, one
			// bound to an address like flanneld's udp backend.
			rxs := []*Conn{listenT(t, "0.0.0.0:0", mode.o), listenT(t, "127.0.0.1:0", mode.o)}
			if gso, _ := tx.Offloads(); mode.o.GSO && !gso {
				t.Skip("kernel has no UDP GSO; nothing to exercise")
			}
			cols := make([]*collector, len(rxs))
			dsts := make([]netip.AddrPort, len(rxs))
			for k, rx := range rxs {
				cols[k] = collect(rx, Headroom)
				dsts[k] = dialable(rx.LocalAddr())
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(mode.name))))
			sent := make([][][]byte, len(rxs)) // per receiver, in order
			total := 0
			sizes := []int{1, 7, 100, 576, 1200, 1400, 1472, 4000, 8950}
			for round := range 40 {
				var pkts [][]byte
				var addrs []netip.AddrPort
				for len(pkts) < 64 {
					k := rng.IntN(len(rxs))
					size := sizes[rng.IntN(len(sizes))]
					run := 1 + rng.IntN(20)
					for j := range run {
						s := size
						if j == run-1 && rng.IntN(2) == 0 {
							s = 1 + rng.IntN(size) // a shorter tail ends a GSO run
						}
						p := payload(k, len(sent[k]), s)
						pkts, addrs = append(pkts, p), append(addrs, dsts[k])
						sent[k] = append(sent[k], p)
					}
				}
				if round%10 == 3 { // an empty datagram is a datagram too
					pkts, addrs = append(pkts, []byte{}), append(addrs, dsts[0])
					sent[0] = append(sent[0], []byte{})
				}
				if err := tx.WriteBatch(pkts, addrs); err != nil {
					t.Fatalf("round %d: WriteBatch: %v", round, err)
				}
				total += len(pkts)
				for k := range rxs {
					cols[k].waitFor(t, len(sent[k]))
				}
			}
			for k, rx := range rxs {
				rx.Close()
				if err := <-cols[k].done; !errors.Is(err, net.ErrClosed) {
					t.Errorf("receiver %d ended with %v, want net.ErrClosed", k, err)
				}
			}
			for k, col := range cols {
				if len(col.got) != len(sent[k]) {
					t.Fatalf("receiver %d got %d datagrams, want %d", k, len(col.got), len(sent[k]))
				}
				for i, g := range col.got {
					if !bytes.Equal(g.data, sent[k][i]) {
						t.Fatalf("receiver %d datagram %d: got %d bytes (% x...), want %d (% x...): order or content broken",
							k, i, len(g.data), head(g.data), len(sent[k][i]), head(sent[k][i]))
					}
					if g.from != tx.LocalAddr() {
						t.Fatalf("receiver %d datagram %d from %s, want %s", k, i, g.from, tx.LocalAddr())
					}
				}
			}
			split := rxs[0].rd.trainsSplit + rxs[1].rd.trainsSplit
			gso, _ := tx.Offloads()
			switch mode.name {
			case "gso_gro":
				if !gso || split == 0 {
					t.Errorf("gso on at the end: %v, GRO trains split: %d; want GSO kept and trains seen", gso, split)
				}
			case "plain":
				if gso || split != 0 {
					t.Errorf("plain mode used offloads: gso %v, trains %d", gso, split)
				}
			case "gso_fallback":
				if gso {
					t.Error("GSO still on after the kernel refused it")
				}
			}
			t.Logf("%d datagrams, %d GRO trains split", total, split)
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func TestRoundTripIPv6(t *testing.T) {
	if ln, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	tx := listenT(t, "[::1]:0", DefaultOptions())
	rx := listenT(t, "[::1]:0", DefaultOptions())
	col := collect(rx, 0)
	var pkts [][]byte
	var addrs []netip.AddrPort
	for i := range 50 {
		pkts = append(pkts, payload(0, i, 1000))
		addrs = append(addrs, rx.LocalAddr())
	}
	if err := tx.WriteBatch(pkts, addrs); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if err := tx.WriteBatch([][]byte{{1}}, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("IPv4 peer on an IPv6 socket: %v, want a not-reachable error", err)
	}
	col.waitFor(t, len(pkts))
	col.mu.Lock()
	defer col.mu.Unlock()
	for i, g := range col.got {
		if !bytes.Equal(g.data, pkts[i]) || g.from != tx.LocalAddr() {
			t.Fatalf("datagram %d from %s differs", i, g.from)
		}
	}
}

// A GRO train longer than the caller's batch is handed out over several
// calls, in order, with nothing lost.
func TestTrainSplitAcrossCalls(t *testing.T) {
	tx := listenT(t, "127.0.0.1:0", DefaultOptions())
	rx := listenT(t, "127.0.0.1:0", DefaultOptions())
	if gso, gro := tx.Offloads(); !gso || !gro {
		t.Skip("kernel lacks UDP GSO or GRO")
	}
	var pkts [][]byte
	var addrs []netip.AddrPort
	for i := range 30 {
		pkts = append(pkts, payload(0, i, 1000))
		addrs = append(addrs, rx.LocalAddr())
	}
	pkts[29] = pkts[29][:300]
	if err := tx.WriteBatch(pkts, addrs); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	bufs := newBufs(4, 16+MaxDatagram)
	sizes := make([]int, 4)
	from := make([]netip.AddrPort, 4)
	var got [][]byte
	for calls := 0; len(got) < len(pkts); calls++ {
		n, err := rx.ReadBatch(bufs, sizes, from, 16)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for i := range n {
			got = append(got, bytes.Clone(bufs[i][16:16+sizes[i]]))
		}
	}
	for i := range pkts {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("datagram %d: %d bytes, want %d (order or content broken)", i, len(got[i]), len(pkts[i]))
		}
	}
	if rx.rd.trainsSplit == 0 {
		t.Error("no GRO train arrived; the split path was not exercised")
	}
}

func TestTruncatedDropped(t *testing.T) {
	for _, o := range []Options{DefaultOptions(), plainOptions()} {
		t.Run(fmt.Sprintf("gro=%v", o.GRO), func(t *testing.T) {
			tx := listenT(t, "127.0.0.1:0", o)
			rx := listenT(t, "127.0.0.1:0", o)
			to := rx.LocalAddr()
			big := []byte(strings.Repeat("x", 500))
			small := []byte("fits")
			// Three equal big ones (a GSO train with GSO on), then a small one.
			if err := tx.WriteBatch([][]byte{big, big, big, small}, []netip.AddrPort{to, to, to, to}); err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			bufs := newBufs(8, 10+100) // room for 100 bytes only
			sizes := make([]int, 8)
			from := make([]netip.AddrPort, 8)
			n, err := rx.ReadBatch(bufs, sizes, from, 10)
			if err != nil {
				t.Fatalf("ReadBatch: %v", err)
			}
			if n != 1 || string(bufs[0][10:10+sizes[0]]) != "fits" {
				t.Fatalf("ReadBatch gave %d datagrams (first %q), want only %q", n, bufs[0][10:10+sizes[0]], small)
			}
			if rx.Truncated() != 3 {
				t.Errorf("Truncated() = %d, want 3", rx.Truncated())
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	c := listenT(t, "127.0.0.1:0", DefaultOptions())
	_, err := Listen(c.LocalAddr(), DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), c.LocalAddr().String()) {
		t.Errorf("Listen on a taken port: %v, want an error naming the address and saying it is in use", err)
	}
	bad := DefaultOptions()
	bad.BatchSize = -1
	if _, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), bad); err == nil || !strings.Contains(err.Error(), "BatchSize -1") {
		t.Errorf("BatchSize -1: %v, want an error naming the field and value", err)
	}
	bad = DefaultOptions()
	bad.SocketBuffer = -5
	if _, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), bad); err == nil || !strings.Contains(err.Error(), "SocketBuffer -5") {
		t.Errorf("SocketBuffer -5: %v, want an error naming the field and value", err)
	}
	if _, err := Listen(netip.AddrPort{}, DefaultOptions()); err == nil {
		t.Error("Listen on the zero AddrPort succeeded")
	}
}

func TestCloseUnblocksReadAndIsIdempotent(t *testing.T) {
	c := listenT(t, "127.0.0.1:0", DefaultOptions())
	errc := make(chan error, 1)
	go func() {
		_, err := c.ReadBatch(newBufs(1, MaxDatagram), make([]int, 1), make([]netip.AddrPort, 1), 0)
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadBatch after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.WriteBatch([][]byte{{1}}, []netip.AddrPort{c.LocalAddr()}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
}

func TestWriteBatchSkipsBadAddressAndSendsTheRest(t *testing.T) {
	tx := listenT(t, "127.0.0.1:0", DefaultOptions())
	rx := listenT(t, "127.0.0.1:0", DefaultOptions())
	if err := tx.WriteBatch([][]byte{{1}, {2}}, []netip.AddrPort{rx.LocalAddr()}); err == nil || !strings.Contains(err.Error(), "addrs has 1 entries for 2 packets") {
		t.Errorf("short addrs: %v", err)
	}
	v6 := netip.MustParseAddrPort("[fd00::1]:8472")
	to := rx.LocalAddr()
	err := tx.WriteBatch([][]byte{[]byte("a"), []byte("b"), []byte("c")}, []netip.AddrPort{to, v6, to})
	if err == nil || !strings.Contains(err.Error(), "packet 1") || !strings.Contains(err.Error(), "fd00::1") {
		t.Errorf("IPv6 peer on an IPv4 socket: %v, want an error naming packet 1 and its address", err)
	}
	bufs := newBufs(4, MaxDatagram)
	sizes := make([]int, 4)
	from := make([]netip.AddrPort, 4)
	var got []string
	for len(got) < 2 {
		n, err := rx.ReadBatch(bufs, sizes, from, 0)
		if err != nil {
			t.Fatalf("ReadBatch: %v", err)
		}
		for i := range n {
			got = append(got, string(bufs[i][:sizes[i]]))
		}
	}
	if strings.Join(got, "") != "ac" {
		t.Fatalf("got %q, want the two reachable packets a, c", got)
	}
}

func TestBatchCycleAllocs(t *testing.T) {
	for _, o := range []Options{DefaultOptions(), plainOptions()} {
		t.Run(fmt.Sprintf("gso=%v,gro=%v", o.GSO, o.GRO), func(t *testing.T) {
			const n = 32
			tx, rx, pkts, addrs := loopbackPair(t, o, n, 1200)
			bufs := newBufs(n, Headroom+MaxDatagram)
			sizes := make([]int, n)
			from := make([]netip.AddrPort, n)
			allocs := cycleAllocs(t, 50, tx, pkts, addrs, func() error { return readAll(rx, bufs, sizes, from, n) })
			if allocs != 0 {
				t.Fatalf("WriteBatch+ReadBatch of %d datagrams: %.1f allocations per cycle, want 0", n, allocs)
			}
		})
	}
}

func TestGSOKernelBroken(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.44-fc-v657": false, "7.0": true, "7.0.0-rc1": true, "7.1.4": true, "7.1.4-arch1": true,
		"7.1.5": false, "7.2.0": false, "6.99.1": false, "": false, "garbage": false, "8.0": false,
	} {
		if got := gsoKernelBroken(release); got != want {
			t.Errorf("gsoKernelBroken(%q) = %v, want %v", release, got, want)
		}
	}
}

func TestGROSegmentParse(t *testing.T) {
	c := make([]byte, 64)
	put := func(at int, level, typ int32, val int32) int {
		binary.NativeEndian.PutUint64(c[at:], 20)
		binary.NativeEndian.PutUint32(c[at+8:], uint32(level))
		binary.NativeEndian.PutUint32(c[at+12:], uint32(typ))
		binary.NativeEndian.PutUint32(c[at+16:], uint32(val))
		return at + 24
	}
	end := put(0, 0, 8, 999)      // IP_PKTINFO-like, not ours
	end = put(end, 17, 104, 1400) // SOL_UDP, UDP_GRO
	if got := groSegment(c, end); got != 1400 {
		t.Errorf("groSegment = %d, want 1400 from the second cmsg", got)
	}
	if got := groSegment(c, 24); got != 0 {
		t.Errorf("groSegment without a UDP_GRO cmsg = %d, want 0", got)
	}
	binary.NativeEndian.PutUint64(c[0:], 4000) // length past the buffer
	if got := groSegment(c, end); got != 0 {
		t.Errorf("groSegment with a bogus cmsg length = %d, want 0", got)
	}
}

// TestGSORunOverPathMTU: a GSO run whose segments exceed the route's MTU is
// refused (EMSGSIZE); it must go out as plain datagrams, which the kernel
// fragments and delivers, and GSO must stay on for later sends.
func TestGSORunOverPathMTU(t *testing.T) {
	netnstest.Run(t, func() { // a throwaway namespace with a small loopback MTU
		if out, err := exec.Command("ip", "link", "set", "lo", "mtu", "1400", "up").CombinedOutput(); err != nil {
			t.Errorf("ip link: %v: %s", err, out)
			return
		}
		rx := listenT(t, "127.0.0.1:0", DefaultOptions())
		tx := listenT(t, "127.0.0.1:0", DefaultOptions())
		pkts := [][]byte{bytes.Repeat([]byte{1}, 1450), bytes.Repeat([]byte{2}, 1450), bytes.Repeat([]byte{3}, 1450)}
		to := rx.LocalAddr()
		if err := tx.WriteBatch(pkts, []netip.AddrPort{to, to, to}); err != nil {
			t.Errorf("WriteBatch: %v", err)
			return
		}
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, Headroom+MaxDatagram)
		}
		sizes, addrs := make([]int, 8), make([]netip.AddrPort, 8)
		rx.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := 0
		for got < 3 {
			n, err := rx.ReadBatch(bufs, sizes, addrs, Headroom)
			if err != nil {
				t.Errorf("after %d datagrams: %v", got, err)
				return
			}
			for i := 0; i < n; i++ {
				if sizes[i] != 1450 || bufs[i][Headroom] != byte(got+1) {
					t.Errorf("datagram %d: %d bytes of %d", got, sizes[i], bufs[i][Headroom])
				}
				got++
			}
		}
		if gso, _ := tx.Offloads(); !gso {
			t.Error("one refused run turned GSO off for good")
		}
		// The refusal path allocates nothing: with holds of 0 every batch
		// is refused, recorded and sent again plain.
		tx.wr.holds.set, tx.wr.holds.live = [holdSets][holdWays]hold{}, 0 // forget the first refusal
		tx.wr.holds.min, tx.wr.holds.max = 0, 0
		before := tx.GSOStats()
		var failed error
		allocs := testing.AllocsPerRun(20, func() {
			if err := tx.WriteBatch(pkts, []netip.AddrPort{to, to, to}); err != nil {
				failed = err
				return
			}
			failed = readAll(rx, bufs, sizes, addrs, 3)
		})
		if failed != nil {
			t.Errorf("refused batches: %v", failed)
			return
		}
		if allocs != 0 {
			t.Errorf("refused GSO batch: %.1f allocations per batch, want 0", allocs)
		}
		if d := tx.GSOStats().Refused - before.Refused; d < 20 {
			t.Errorf("%d refusals in 21 batches, want every batch refused", d)
		}
		if gso, _ := tx.Offloads(); !gso {
			t.Error("refusals toward one address turned GSO off for the Conn")
		}
	})
}
