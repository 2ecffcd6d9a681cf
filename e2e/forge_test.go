package e2e

import (
	"net"
	"net/netip"
	"testing"

	"github.com/feltnet/felt/agent"
	"github.com/feltnet/felt/encap"
	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
)

// backendPort is the UDP port agents of backend listen on (flannel's defaults).
func backendPort(backend string) int {
	if backend == "vxlan" {
		return 8472
	}
	return 8285
}

// forgedFrame frames a 32-byte UDP packet src → dst as a peer would send it
// to the agent whose status is st: for vxlan, to st's VtepMAC from a MAC no
// agent uses.
func forgedFrame(t *testing.T, backend string, st agent.Status, src, dst netip.Addr) []byte {
	t.Helper()
	var fr interface {
		Encap(buf []byte, off, n int, dst [6]byte) ([]byte, drop.Reason)
	} = encap.NewUDP(1472)
	var dstMAC [6]byte
	if backend == "vxlan" {
		mac, err := net.ParseMAC(st.VtepMAC)
		if err != nil {
			t.Fatal(err)
		}
		copy(dstMAC[:], mac)
		fr = encap.NewVXLAN(1, [6]byte{0x02, 0xee, 0, 0, 0, 1})
	}
	pkt := encaptest.IPv4(src, dst, 64, 17, make([]byte, 32))
	buf := make([]byte, encap.Headroom+len(pkt))
	copy(buf[encap.Headroom:], pkt)
	f, r := fr.Encap(buf, encap.Headroom, len(pkt), dstMAC)
	if r != drop.OK {
		t.Fatalf("encap: %v", r)
	}
	return f
}

// sendDatagrams sends payload n times to `to` from a socket made inside
// `in` (a Host's Do, or a function that runs fn in the test's namespace).
func sendDatagrams(t *testing.T, in func(func() error) error, to netip.AddrPort, payload []byte, n int) {
	t.Helper()
	if err := in(func() error {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		if err != nil {
			return err
		}
		defer conn.Close()
		for i := 0; i < n; i++ {
			if _, err := conn.Write(payload); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
