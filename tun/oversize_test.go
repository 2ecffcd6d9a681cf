package tun

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestWriteOversizeTCP, for each family: a TCP packet longer than the
// TUN's MTU (a kernel vxlan peer's TSO packet that crossed a veth underlay
// whole arrives so, DF set) is written as GSO, so the kernel can forward
// it: routed back out of the same TUN, it comes out in segments that fit
// the MTU, its payload whole and in order. Written as it is, the kernel
// answered it with an ICMP "fragmentation needed" (ICMPv6 Packet Too Big)
// and dropped it.
func TestWriteOversizeTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) { writeOversizeTCP(t, v6) })
	}
}

func writeOversizeTCP(t *testing.T, v6 bool) {
	inThrowawayNetns(t)
	dev, name := configured(t, "o") // MTU 1420, 10.5.0.0/16 routed into it
	// Forward, and without the ICMP redirect a packet sent back out of the
	// link it came in on would earn its source (IPv6 sends one regardless:
	// skipped below).
	for _, f := range []string{"ipv4/ip_forward=1", "ipv4/conf/all/send_redirects=0", "ipv4/conf/" + name + "/send_redirects=0",
		"ipv6/conf/all/forwarding=1"} {
		k, v, _ := strings.Cut(f, "=")
		if err := os.WriteFile("/proc/sys/net/"+k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	// 10.5.9.9 → 10.5.7.7, fd00::1 → fd00::2: not local, so forwarded back
	// into the TUN.
	var p []byte
	l4 := 20
	if v6 {
		link, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.ParseIP("fd00::"), Mask: net.CIDRMask(16, 128)}}); err != nil {
			t.Fatal(err)
		}
		p, l4 = buildPacket(true, true, payload, 1, nil), 40
	} else {
		p = buildPacket(false, true, payload, 1, []byte{10, 5, 9, 9, 10, 5, 7, 7})
		p[6] |= 0x40 // DF, as TCP sets it
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], ^naiveSum(p[:20]))
	}
	if n, err := dev.Write([][]byte{p}, 0); n != 1 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}

	bufs, sizes := make([][]byte, dev.BatchSize()), make([]int, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, headroom+65535)
	}
	var got []byte
	for len(got) < len(payload) {
		n, err := dev.Read(bufs, sizes, headroom)
		if err != nil {
			t.Fatalf("Read after %d of %d payload bytes: %v", len(got), len(payload), err)
		}
		for i := range n {
			seg := bufs[i][headroom : headroom+sizes[i]]
			proto := seg[9]
			switch {
			case seg[0]>>4 == 6 && !v6:
				continue // the link's own IPv6 chatter (router solicitations)
			case seg[0]>>4 == 6:
				proto = seg[6]
				if proto == 58 && len(seg) > 40 && seg[40] != 2 {
					continue // ICMPv6 other than Packet Too Big: redirects, neighbour discovery
				}
			}
			if proto != 6 {
				t.Fatalf("read a packet of protocol %d (%d bytes), not a TCP segment: % x", proto, len(seg), seg[:min(len(seg), 48)])
			}
			if len(seg) > 1420 {
				t.Errorf("segment of %d bytes, longer than the MTU 1420", len(seg))
			}
			got = append(got, seg[l4+20:]...)
		}
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("payload differs after forwarding (%d bytes read)", len(got))
	}
}

// TestOversizeTCPHeader pins the virtio header Write gives a TCP packet
// longer than the MTU: GSO in segments of MTU − headers, ECN-marked when
// the packet carries CWR (only the first segment may); a packet with SYN,
// RST or URG, or one that fits, is not segmented.
func TestOversizeTCPHeader(t *testing.T) {
	d := &Device{mtu: 1420}
	for _, tc := range []struct {
		name    string
		flags   uint8
		size    int
		gsoType uint8
	}{
		{"ACK", tcpACK, 5000, gsoTCPv4},
		{"ACK PSH FIN", tcpACK | tcpPSH | tcpFIN, 5000, gsoTCPv4},
		{"CWR", tcpACK | tcpCWR, 5000, gsoTCPv4 | gsoECN},
		{"SYN", tcpSYN, 5000, gsoNone},
		{"RST", tcpRST | tcpACK, 5000, gsoNone},
		{"URG", tcpURG | tcpACK, 5000, gsoNone},
		{"fits", tcpACK | tcpPSH, 1380, gsoNone},
	} {
		p := buildPacket(false, true, make([]byte, tc.size), 1, nil)
		p[20+13] = tc.flags
		info := []l4Info{inspect(p)}
		if !info[0].ok {
			t.Fatalf("%s: test packet not understood", tc.name)
		}
		vh := make([]byte, VirtioHdrLen)
		_, n := d.prepRun(make([]unix.Iovec, 2, maxRun+2), vh, [][]byte{p}, info, 0, 0)
		gotType, hdrLen, gsoSize := vh[1], binary.LittleEndian.Uint16(vh[2:]), binary.LittleEndian.Uint16(vh[4:])
		if n != 1 || gotType != tc.gsoType || vh[0] != virtioNeedsCsum {
			t.Errorf("%s: %d packets, flags %#x, GSO type %#x; want 1, NEEDS_CSUM, %#x", tc.name, n, vh[0], gotType, tc.gsoType)
		}
		if tc.gsoType != gsoNone && (hdrLen != 40 || gsoSize != 1380) {
			t.Errorf("%s: hdr_len %d, gso_size %d; want 40, 1380", tc.name, hdrLen, gsoSize)
		}
	}
}
