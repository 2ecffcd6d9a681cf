package tun

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func createQueues(t *testing.T, name string, n int) []*Device {
	t.Helper()
	devs, err := CreateQueues(name, 1420, n, testOptions())
	if err != nil {
		t.Fatalf("CreateQueues(%s, %d): %v", name, n, err)
	}
	t.Cleanup(func() {
		for _, d := range devs {
			d.Close()
		}
	})
	return devs
}

// TestQueuesSpreadFlowsAndKeepEachOnOne sends 64 UDP flows, 3 datagrams
// each, into a 2-queue TUN: every flow must come out of one queue only, and
// both queues must carry some (all 64 on one queue by chance: 2^-63).
func TestQueuesSpreadFlowsAndKeepEachOnOne(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("q")
	devs := createQueues(t, name, 2)
	if d := run(t, "ip", "-d", "link", "show", name); !strings.Contains(d, "multi_queue") {
		t.Fatalf("ip -d link show %s: want multi_queue:\n%s", name, d)
	}
	if ok, err := IsMultiQueue(name); !ok || err != nil {
		t.Fatalf("IsMultiQueue(%s) = %v, %v; want true", name, ok, err)
	}
	if skipped, err := Configure(name, NetConfig{Addr: mustPrefix("10.5.3.0/32"), Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}}); err != nil || len(skipped) > 0 {
		t.Fatalf("Configure: %q, %v", skipped, err)
	}

	const flows, per = 64, 3
	var mu sync.Mutex
	queueOf := map[uint16]map[int]int{} // source port → queue → datagrams
	var got atomic.Int64
	var wg sync.WaitGroup
	for q, d := range devs {
		d.file.SetReadDeadline(time.Now().Add(10 * time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs, sizes := readBufs(d.BatchSize())
			for {
				n, err := d.Read(bufs, sizes, headroom)
				if err != nil {
					return
				}
				for i := 0; i < n; i++ {
					pkt := gopacket.NewPacket(bufs[i][headroom:headroom+sizes[i]], layers.LayerTypeIPv4, gopacket.Default)
					udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
					if udp == nil || udp.DstPort != 4000 {
						continue
					}
					mu.Lock()
					if queueOf[uint16(udp.SrcPort)] == nil {
						queueOf[uint16(udp.SrcPort)] = map[int]int{}
					}
					queueOf[uint16(udp.SrcPort)][q]++
					mu.Unlock()
					if got.Add(1) == flows*per {
						for _, d := range devs {
							d.file.SetReadDeadline(time.Now())
						}
					}
				}
			}
		}()
	}
	for range flows {
		c, err := net.Dial("udp4", "10.5.9.9:4000")
		if err != nil {
			t.Fatal(err)
		}
		for range per {
			if _, err := c.Write([]byte("one flow")); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	wg.Wait()
	if got.Load() != flows*per {
		t.Fatalf("read %d datagrams of %d from the queues", got.Load(), flows*per)
	}
	used := map[int]int{}
	for port, qs := range queueOf {
		if len(qs) != 1 {
			t.Errorf("flow from port %d came out of %d queues: %v", port, len(qs), qs)
		}
		for q := range qs {
			used[q]++
		}
	}
	if len(used) != 2 {
		t.Errorf("flows per queue %v: want both queues used", used)
	}
	t.Logf("flows per queue: %v", used)
}

// TestQueuesEachWrites writes a datagram into the TUN through every queue;
// a socket behind the TUN gets them all.
func TestQueuesEachWrites(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("r")
	devs := createQueues(t, name, 3)
	if skipped, err := Configure(name, NetConfig{Addr: mustPrefix("10.5.3.0/32"), Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}}); err != nil || len(skipped) > 0 {
		t.Fatalf("Configure: %q, %v", skipped, err)
	}
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0), Port: 4001})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	for q, d := range devs {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IPv4(10, 5, 9, 9).To4(), DstIP: net.IPv4(10, 5, 3, 0).To4()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(5000 + q), DstPort: 4001}
		udp.SetNetworkLayerForChecksum(ip)
		pkt := serialize(t, ip, udp, gopacket.Payload("from a queue"))
		buf := make([]byte, headroom+65535)
		n := copy(buf[headroom:], pkt)
		if _, err := d.Write([][]byte{buf[:headroom+n]}, headroom); err != nil {
			t.Fatalf("queue %d: Write: %v", q, err)
		}
	}
	seen := map[int]bool{}
	for range devs {
		b := make([]byte, 64)
		_, from, err := sock.ReadFromUDP(b)
		if err != nil {
			t.Fatalf("after %v: %v", seen, err)
		}
		seen[from.Port-5000] = true
	}
	if len(seen) != len(devs) {
		t.Errorf("datagrams from queues %v, want all %d", seen, len(devs))
	}
}

// TestQueuesRefuse covers what CreateQueues turns down: a queue count out of
// range, an existing single-queue TUN (ErrSingleQueue), and a multi-queue
// TUN that another holder has open (also for CreateWith).
func TestQueuesRefuse(t *testing.T) {
	inThrowawayNetns(t)
	for _, n := range []int{0, -1, MaxQueues + 1} {
		if _, err := CreateQueues(devName("x"), 0, n, testOptions()); err == nil || !strings.Contains(err.Error(), "queues") {
			t.Errorf("CreateQueues(n=%d) = %v, want an error naming queues", n, err)
		}
	}

	single := devName("s")
	run(t, "ip", "tuntap", "add", "dev", single, "mode", "tun", "vnet_hdr")
	t.Cleanup(func() { Remove(single) })
	_, err := CreateQueues(single, 0, 2, testOptions())
	if !errors.Is(err, ErrSingleQueue) || !strings.Contains(err.Error(), single) {
		t.Errorf("2 queues on a single-queue TUN: %v, want ErrSingleQueue naming it", err)
	}
	if ok, err := IsMultiQueue(single); ok || err != nil {
		t.Errorf("IsMultiQueue(single-queue) = %v, %v; want false", ok, err)
	}
	// One queue of it is today's path.
	devs := createQueues(t, single, 1)
	devs[0].Close()

	multi := devName("m")
	createQueues(t, multi, 2)
	for _, try := range []func() error{
		func() error { _, err := CreateQueues(multi, 0, 2, testOptions()); return err },
		func() error { _, err := CreateWith(multi, 0, testOptions()); return err },
	} {
		if err := try(); err == nil || !strings.Contains(err.Error(), "already open") {
			t.Errorf("attaching to a multi-queue TUN in use: %v, want already open", err)
		}
	}
}

// TestQueuesPersistentReattach: a persistent multi-queue TUN (as the agent
// makes felt0) takes 2 queues, then, after they closed, 1 (CreateWith sees
// the flag and attaches multi-queue), then 2 again; closing leaves it.
func TestQueuesPersistentReattach(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("p")
	run(t, "ip", "tuntap", "add", "dev", name, "mode", "tun", "vnet_hdr", "multi_queue")
	t.Cleanup(func() { Remove(name) })
	for _, n := range []int{2, 1, 2} {
		devs, err := CreateQueues(name, 0, n, testOptions())
		if err != nil {
			t.Fatalf("%d queues: %v", n, err)
		}
		for _, d := range devs {
			d.Close()
		}
	}
	if ok, err := IsMultiQueue(name); !ok || err != nil {
		t.Errorf("after closing: IsMultiQueue = %v, %v; want the persistent device still there", ok, err)
	}
}

// TestQueuesCloseRemovesDevice: a TUN that CreateQueues made goes with its
// last queue.
func TestQueuesCloseRemovesDevice(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("c")
	devs, err := CreateQueues(name, 0, 2, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	devs[0].Close()
	if ok, _ := IsMultiQueue(name); !ok {
		t.Fatal("the TUN went with its first queue")
	}
	devs[1].Close()
	if ok, err := IsMultiQueue(name); ok || err != nil {
		t.Errorf("after the last queue: IsMultiQueue = %v, %v; want the device gone", ok, err)
	}
}

// TestRemoveSingleQueue: a single-queue TUN nobody has open is deleted (and
// then made multi-queue by CreateQueues); one in use, a multi-queue one and
// a missing one are left alone.
func TestRemoveSingleQueue(t *testing.T) {
	inThrowawayNetns(t)
	name := devName("d")
	if removed, err := RemoveSingleQueue(name); removed || err != nil {
		t.Fatalf("missing device: %v, %v; want false, nil", removed, err)
	}
	run(t, "ip", "tuntap", "add", "dev", name, "mode", "tun", "vnet_hdr")
	t.Cleanup(func() { Remove(name) })

	held := createQueues(t, name, 1)
	if removed, err := RemoveSingleQueue(name); removed || err == nil || !strings.Contains(err.Error(), "already open") {
		t.Errorf("single-queue TUN in use: %v, %v; want an error saying it is open", removed, err)
	}
	held[0].Close()

	if removed, err := RemoveSingleQueue(name); !removed || err != nil {
		t.Fatalf("idle single-queue TUN: %v, %v; want it removed", removed, err)
	}
	createQueues(t, name, 2)
	if removed, err := RemoveSingleQueue(name); removed || err != nil {
		t.Errorf("multi-queue TUN: %v, %v; want false, nil", removed, err)
	}
}
