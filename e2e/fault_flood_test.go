package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/feltnet/felt/netns"
)

// TestFaultGarbageFlood: while a legitimate TCP transfer runs between two
// agents, two attackers send random datagrams to the receiver's felt port in
// tight loops for 3.5 s: a third host that holds no lease, and (from another port) the
// legitimate peer's own address, whose garbage gets past the sender check
// into the decoder. The transfer completes byte for byte; the agent keeps
// running; its drop counters account for the garbage that reached it.
func TestFaultGarbageFlood(t *testing.T) {
	eachPacketBackend(t, 3, func(t *testing.T, c *cluster, backend string) {
		hosts := c.lab.Hosts
		target, peer, stranger := hosts[0], hosts[1], hosts[2]
		c.start(target)
		c.start(peer)
		c.waitPeers(target, 1, 10*time.Second)
		c.waitPeers(peer, 1, 10*time.Second)
		dst := c.tunAddr(target)
		port := 8285
		if backend == "vxlan" {
			port = 8472
		}
		before := c.status(target).Counters
		rcvErrBefore := udpRcvbufErrors(t, c, target)

		garbage := garbageDatagrams(backend, 512)
		stop := make(chan struct{})
		var sent [2]atomic.Int64
		var wg sync.WaitGroup
		for i, from := range []*netns.Host{stranger, peer} {
			var conn *net.UDPConn
			if err := from.Do(func() (err error) {
				conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: target.Addr.AsSlice(), Port: port})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer conn.Close()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					// Errors (ECONNREFUSED from an ICMP reply) do not stop a flood.
					if _, err := conn.Write(garbage[n%len(garbage)]); err == nil {
						sent[i].Add(1)
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond) // the flood is on before the stream starts
		stream := startStream(t, peer, target, dst)
		time.Sleep(3 * time.Second)
		err := stream.finish()
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("stream %s → %s under the flood: %v", peer.Name, target.Name, err)
		}

		if err := pingEventually(c.ctx, peer, dst, 10*time.Second); err != nil {
			t.Fatalf("after the flood: %v", err)
		}
		// Only the inbound reasons garbage can cause: the agent's other
		// drops meanwhile (the kernel's IPv6 router solicitation to
		// ff02::2 out of felt0 is a no_route) are not the flood's.
		after := c.status(target).Counters
		var dropped uint64
		var detail, other []string
		for k, v := range after {
			d := v - before[k]
			switch {
			case !strings.HasPrefix(k, "drop_") || d == 0:
			case floodReasons[strings.TrimPrefix(k, "drop_")]:
				dropped += d
				detail = append(detail, fmt.Sprintf("%s %d", k, d))
			default:
				other = append(other, fmt.Sprintf("%s %d", k, d))
			}
		}
		kernel := udpRcvbufErrors(t, c, target) - rcvErrBefore
		total := sent[0].Load() + sent[1].Load()
		t.Logf("%d MiB %s → %s byte for byte in 3 s under a flood of %d datagrams (stranger %d, peer's address %d); "+
			"felt dropped and counted %d (%s); kernel socket-buffer drops %d (garbage and legitimate)",
			stream.sentN.Load()>>20, peer.Name, target.Name, total, sent[0].Load(), sent[1].Load(),
			dropped, strings.Join(detail, ", "), kernel)
		if len(other) > 0 {
			t.Logf("other drops meanwhile, not the flood's: %s", strings.Join(other, ", "))
		}
		if after["drop_unknown_sender"]-before["drop_unknown_sender"] == 0 {
			t.Errorf("no datagram from the stranger counted as drop_unknown_sender")
		}
		if dropped == 0 || dropped > uint64(total) {
			t.Errorf("dropped %d of %d garbage datagrams: want some, and no more than were sent", dropped, total)
		}
	})
}

// floodReasons are the drop reasons a datagram arriving at the felt port
// can be counted under: the sender check, the decoders and the inner checks.
var floodReasons = map[string]bool{
	"unknown_sender": true, "too_short": true, "bad_header": true, "wrong_vni": true, "not_for_us": true,
	"loop_mac": true, "bad_ip": true, "source_outside_subnet": true, "not_local": true,
}

// garbageDatagrams returns n random datagrams of 1..1400 bytes; for vxlan
// half of them start with a valid VXLAN header (flags 0x08, VNI 1) so that
// they reach the inner-frame checks.
func garbageDatagrams(backend string, n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 1+r.IntN(1400))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if backend == "vxlan" && i%2 == 0 && len(b) >= 8 {
			copy(b, []byte{0x08, 0, 0, 0, 0, 0, 1, 0})
		}
		if backend == "udp" && i%2 == 0 {
			b[0] = 0x45 // looks like IPv4 at first glance
		}
		out[i] = b
	}
	return out
}

// udpRcvbufErrors reads the host's UDP RcvbufErrors (datagrams the kernel
// dropped because a socket buffer was full) from /proc/net/snmp.
func udpRcvbufErrors(t *testing.T, c *cluster, h *netns.Host) int64 {
	t.Helper()
	out, err := h.Command(c.ctx, "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatalf("read /proc/net/snmp in %s: %v", h.Name, err)
	}
	var head []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)
		if head == nil {
			head = f
			continue
		}
		for i, name := range head {
			if name == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return -1
}
