package tun

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestWriteBackToBack: packets that lie back to back in one array, as the
// inner packets of a GRO train do when the router hands the Conn's views
// to Write, go into a real TUN in coalesced runs (two flows in alternating
// groups, so every group after the first starts a new run right behind the
// previous run's last packet), and both sockets receive every byte intact.
// Write must write nothing in front of bufs[i][offset:]: a virtio header
// there lands on the previous packet's tail, which with io_uring (all runs
// prepared, then one enter) is still to be sent. The bytes in front of the
// first packet must be untouched as well. Offset 0 is what the router
// passes; offset VirtioHdrLen puts each buffer's "headroom" over the
// previous packet, as a caller of the old contract would have.
func TestWriteBackToBack(t *testing.T) {
	forEachPath(t, func(t *testing.T, opts Options) {
		for _, off := range []int{0, VirtioHdrLen} {
			t.Run(fmt.Sprintf("offset=%d", off), func(t *testing.T) {
				inThrowawayNetns(t)
				dev, name := configuredWith(t, "k", opts)
				writeBackToBack(t, dev, name, off)
			})
		}
	})
}

func writeBackToBack(t *testing.T, dev *Device, name string, off int) {
	const groups, perGroup, size = 6, 8, 300
	var socks [2]*net.UDPConn
	for k := range socks {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		socks[k] = c
	}
	const guard = 32
	back := bytes.Repeat([]byte{0xaa}, guard)
	var bufs [][]byte
	var want [2][][]byte
	for i := 0; i < groups*perGroup; i++ {
		flow := (i / perGroup) % 2
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte(i*7 + j)
		}
		want[flow] = append(want[flow], payload)
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IPv4(10, 5, 9, 9), DstIP: net.IPv4(10, 5, 3, 0)}
		udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(socks[flow].LocalAddr().(*net.UDPAddr).Port)}
		udp.SetNetworkLayerForChecksum(ip)
		back = append(back, serialize(t, ip, udp, gopacket.Payload(payload))...)
	}
	pktLen := len(back[guard:]) / (groups * perGroup)
	for i := 0; i < groups*perGroup; i++ {
		start := guard + i*pktLen
		bufs = append(bufs, back[start-off:start+pktLen:start+pktLen])
	}
	before := rxPackets(t, name)
	if n, err := dev.Write(bufs, off); err != nil || n != len(bufs) {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(bufs))
	}
	if d := rxPackets(t, name) - before; dev.uso && d != groups {
		t.Errorf("the kernel received %d packets for %d groups of %d datagrams, want one super-packet per group", d, groups, perGroup)
	}
	if g := back[:guard]; !bytes.Equal(g, bytes.Repeat([]byte{0xaa}, guard)) {
		t.Errorf("Write changed the bytes in front of the first packet: %x", g)
	}
	got := make([]byte, 2*size)
	for flow, c := range socks {
		for i, w := range want[flow] {
			n, err := c.Read(got)
			if err != nil {
				t.Fatalf("flow %d datagram %d: %v", flow, i, err)
			}
			if !bytes.Equal(got[:n], w) {
				t.Fatalf("flow %d datagram %d differs:\n got %x\nwant %x", flow, i, got[:n], w)
			}
		}
	}
}
