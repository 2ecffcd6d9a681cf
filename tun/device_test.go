package tun

import (
	"fmt"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestReadsManyPerCall: datagrams queued in the TUN come out many per
// Read, each a complete packet with a valid UDP checksum (the kernel hands
// them over with partial checksums, which Read completes).
func TestReadsManyPerCall(t *testing.T) {
	b, _ := batchedT(t, "b")
	conn := dialUDP(t, "10.5.9.9:4000")
	const total = 100
	for i := 0; i < total; i++ {
		if _, err := fmt.Fprintf(conn, "datagram %03d", i); err != nil {
			t.Fatal(err)
		}
	}
	bufs, sizes := readBufs(b.BatchSize())
	seen, most := 0, 0
	for calls := 0; seen < total && calls < 50; calls++ {
		n, err := b.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		udpHere := 0
		for i := 0; i < n; i++ {
			pkt := bufs[i][headroom : headroom+sizes[i]]
			p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if udp == nil || udp.DstPort != 4000 {
				continue
			}
			if want := fmt.Sprintf("datagram %03d", seen); string(udp.Payload) != want {
				t.Fatalf("packet %d: %q, want %q (order or content lost)", seen, udp.Payload, want)
			}
			ph := append(append(append([]byte{}, pkt[12:20]...), 0, 17), byte((len(pkt)-20)>>8), byte(len(pkt)-20))
			if s := naiveSum(append(ph, pkt[20:]...)); s != 0xffff {
				t.Fatalf("packet %d: UDP checksum does not verify", seen)
			}
			seen++
			udpHere++
		}
		most = max(most, udpHere)
	}
	if seen != total {
		t.Fatalf("got %d of %d datagrams", seen, total)
	}
	if most < 40 {
		t.Fatalf("at most %d datagrams per Read: queued packets are not read in batches", most)
	}
	t.Logf("%d datagrams, up to %d per Read", seen, most)
}

// batchedT makes a configured TUN in a throwaway namespace; it returns the
// device name too.
func batchedT(t *testing.T, letter string) (*Device, string) {
	t.Helper()
	inThrowawayNetns(t)
	return configured(t, letter)
}

// readBufs returns n read buffers, each with headroom and room for the
// largest packet, and their sizes.
func readBufs(n int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, headroom+65535)
	}
	return bufs, make([]int, len(bufs))
}
