package e2e

import (
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpGSOSend sends one UDP GSO super-datagram of size bytes in segments of
// seg from h to dst:port and returns how many payload bytes arrived at the
// listener (inside dstNS) within a second of the last one.
func udpGSOSend(t *testing.T, c *cluster, from, to wgContainer, size, seg int) int {
	t.Helper()
	var ln *net.UDPConn
	if err := to.ns.Do(func() (err error) {
		ln, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(to.addr, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conn *net.UDPConn
	if err := from.host.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", nil, ln.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, _ := conn.SyscallConn()
	var serr error
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, seg) })
	if serr != nil {
		t.Skipf("UDP_SEGMENT: %v", serr)
	}
	if _, err := conn.Write(make([]byte, size)); err != nil {
		t.Fatalf("send %d bytes in %d-byte segments: %v", size, seg, err)
	}
	got := 0
	buf := make([]byte, 65536)
	for {
		ln.SetReadDeadline(time.Now().Add(time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			return got
		}
		got += n
	}
}

// TestWireGuardUDPGSO: a host's largest UDP GSO send (65,507 bytes, one
// 65,535-byte IP super-packet at the TUN) crosses the wireguard backend
// whole. wireguard-go's buffers hold 16 bytes of headroom and 65,519 of
// frame; wg.New caps the TUN's gso_max_size so that the kernel segments
// larger super-packets itself.
func TestWireGuardUDPGSO(t *testing.T) {
	c := newCluster(t, 2, `{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard"}}`)
	for _, h := range c.lab.Hosts {
		c.start(h)
	}
	for _, h := range c.lab.Hosts {
		c.waitPeers(h, 1, 10*time.Second)
	}
	a, b := c.addContainer(c.lab.Hosts[0]), c.addContainer(c.lab.Hosts[1])
	if err := pingEventually(c.ctx, a.host, b.addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "-n", a.host.Name, "-d", "link", "show", "felt0").CombinedOutput()
	t.Logf("%s", out)
	const size = 65507
	for i := 0; i < 3; i++ {
		if got := udpGSOSend(t, c, a, b, size, 1001); got != size {
			t.Fatalf("UDP GSO send of %d bytes: %d arrived", size, got)
		}
	}
}
