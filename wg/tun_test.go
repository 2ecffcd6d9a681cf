package wg

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/netns/netnstest"
)

// TestTUNWriteConcurrent: wireguard-go writes to the TUN from one goroutine
// per peer. Four writers at once, each Write carrying several coalescible
// runs (so the io_uring path submits more than one), into a real TUN in a
// throwaway namespace: every Write succeeds and a local socket receives
// every datagram intact. Without tunDevice's lock the Device's single-writer
// state is shared: runs get mixed up or the ring refuses a second user.
func TestTUNWriteConcurrent(t *testing.T) {
	dev, sock := tunWithSocket(t, "wgcc0")
	sock.SetReadBuffer(8 << 20)

	const writers, writes, perWrite, size = 4, 100, 8, 64
	got := make(chan map[uint32]bool, 1)
	go func() {
		seen := map[uint32]bool{}
		buf := make([]byte, 2048)
		sock.SetReadDeadline(time.Now().Add(20 * time.Second))
		for len(seen) < writers*writes*perWrite {
			n, err := sock.Read(buf)
			if err != nil {
				break
			}
			if n == size && intact(buf[:size]) {
				seen[binary.BigEndian.Uint32(buf)] = true
			}
		}
		got <- seen
	}()

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			bufs := make([][]byte, perWrite)
			for i := range writes {
				for j := range bufs {
					// Two flows per writer in groups of two: four runs a Write.
					bufs[j] = datagram(t, uint16(9000+2*w+(j/2)%2), uint32((w*writes+i)*perWrite+j), size)
				}
				if _, err := dev.Write(bufs, 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("write: %v", err)
	}
	if seen := <-got; len(seen) != writers*writes*perWrite {
		t.Errorf("received %d distinct intact datagrams, want %d", len(seen), writers*writes*perWrite)
	}
}

// tunWithSocket makes the adapter on a new TUN name (10.77.0.1/24, up) in a
// throwaway namespace and a UDP socket on 10.77.0.1:7000 that datagram's
// packets reach; both close when the test ends.
func tunWithSocket(t *testing.T, name string) (*tunDevice, *net.UDPConn) {
	t.Helper()
	dev := newTUNDevice(testTUN(t, name))
	t.Cleanup(func() { dev.Close() })
	netnstest.Output(t, "ip", "addr", "add", "10.77.0.1/24", "dev", name)
	netnstest.Output(t, "ip", "link", "set", name, "up")
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 77, 0, 1), Port: 7000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return dev, sock
}

// datagram is an IPv4/UDP packet 10.77.0.2:sport → 10.77.0.1:7000 whose
// payload starts with seq and then repeats seq's low byte.
func datagram(t *testing.T, sport uint16, seq uint32, size int) []byte {
	payload := make([]byte, size)
	binary.BigEndian.PutUint32(payload, seq)
	for i := 4; i < size; i++ {
		payload[i] = byte(seq)
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 77, 0, 2), DstIP: net.IPv4(10, 77, 0, 1)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 7000}
	udp.SetNetworkLayerForChecksum(ip)
	b := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// intact says whether p is a payload datagram made: seq, then its low byte.
func intact(p []byte) bool {
	low := p[3]
	for _, c := range p[4:] {
		if c != low {
			return false
		}
	}
	return true
}

// TestTUNDropsCounted: a packet felt's Device refuses on Write (its UDP
// checksum broken after it was computed, as a corrupted decryption would
// leave it) is counted under bad_checksum in the adapter's totals, once, and
// the good packets of the same Write are delivered and not counted.
func TestTUNDropsCounted(t *testing.T) {
	dev, sock := tunWithSocket(t, "wgdrop0")
	bad := datagram(t, 9000, 2, 64)
	bad[len(bad)-1] ^= 0xff
	if _, err := dev.Write([][]byte{datagram(t, 9000, 1, 64), bad, datagram(t, 9000, 3, 64)}, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []uint32{1, 3} {
		n, err := sock.Read(buf)
		if err != nil || n != 64 || binary.BigEndian.Uint32(buf) != want {
			t.Fatalf("read %d bytes (%v), seq %d: want seq %d", n, err, binary.BigEndian.Uint32(buf[:4]), want)
		}
	}
	// A clean Write after it: the drop is not counted again.
	if _, err := dev.Write([][]byte{datagram(t, 9000, 4, 64)}, 0); err != nil {
		t.Fatal(err)
	}
	got := dev.dropped()
	for r := range got {
		want := uint64(0)
		if drop.Reason(r) == drop.BadChecksum {
			want = 1
		}
		if got[r] != want {
			t.Errorf("%v counted %d, want %d", drop.Reason(r), got[r], want)
		}
	}
}
