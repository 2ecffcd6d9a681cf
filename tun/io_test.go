package tun

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// headroom is what a writer must leave before each packet for the
// virtio_net_hdr when offloads are on.
const headroom = 16

func configured(t testing.TB, letter string) (*Device, string) {
	t.Helper()
	name := devName(letter)
	d := createTUN(t, name, 1420)
	configureTest(t, d, name)
	return d, name
}

// dialUDP connects a UDP socket to addr (routed into the test's TUN) and
// closes it at cleanup.
func dialUDP(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// configureTest gives d (named name) the test's address and route, and a
// read deadline that turns a lost packet into a failure instead of a hang.
func configureTest(t testing.TB, d *Device, name string) {
	t.Helper()
	skipped, err := Configure(name, NetConfig{Addr: mustPrefix("10.5.3.0/32"), Routes: []netip.Prefix{mustPrefix("10.5.0.0/16")}})
	if err != nil || len(skipped) > 0 {
		t.Fatalf("Configure: %q, %v", skipped, err)
	}
	if err := d.file.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestReadFromSocket(t *testing.T) {
	inThrowawayNetns(t)
	dev, _ := configured(t, "i")

	conn := dialUDP(t, "10.5.9.9:4000")
	payload := []byte("hello through the tun")
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}

	bufs, sizes := readBufs(dev.BatchSize())
	// The kernel may send its own packets (IPv6 router solicitations) first.
	for tries := 0; tries < 20; tries++ {
		n, err := dev.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		for i := 0; i < n; i++ {
			pkt := gopacket.NewPacket(bufs[i][headroom:headroom+sizes[i]], layers.LayerTypeIPv4, gopacket.Default)
			udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if udp == nil || ip == nil || udp.DstPort != 4000 {
				continue
			}
			if !ip.DstIP.Equal(net.IPv4(10, 5, 9, 9)) || !ip.SrcIP.Equal(net.IPv4(10, 5, 3, 0)) {
				t.Errorf("packet %s -> %s, want 10.5.3.0 -> 10.5.9.9", ip.SrcIP, ip.DstIP)
			}
			if !bytes.Equal(udp.Payload, payload) {
				t.Errorf("payload %q, want %q", udp.Payload, payload)
			}
			return
		}
	}
	t.Fatal("the socket's datagram never came out of the TUN")
}

func TestWriteToSocket(t *testing.T) {
	inThrowawayNetns(t)
	dev, _ := configured(t, "w")

	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 5, 3, 0), Port: 4001})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))

	payload := []byte("hello from the tun")
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 5, 9, 9).To4(), DstIP: net.IPv4(10, 5, 3, 0).To4()}
	udp := &layers.UDP{SrcPort: 5555, DstPort: 4001}
	udp.SetNetworkLayerForChecksum(ip)
	pkt := serialize(t, ip, udp, gopacket.Payload(payload))
	buf := make([]byte, headroom+65535)
	n := copy(buf[headroom:], pkt)
	if _, err := dev.Write([][]byte{buf[:headroom+n]}, headroom); err != nil {
		t.Fatalf("Write: %v", err)
	}

	got := make([]byte, 2048)
	m, from, err := sock.ReadFromUDP(got)
	if err != nil {
		t.Fatalf("socket never got the packet written to the TUN: %v", err)
	}
	if !bytes.Equal(got[:m], payload) {
		t.Errorf("payload %q, want %q", got[:m], payload)
	}
	if from.String() != "10.5.9.9:5555" {
		t.Errorf("from %s, want 10.5.9.9:5555", from)
	}
}
