package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/netns"
)

// flannelUDP emulates a flanneld udp-backend node (docs/flannel-compat.md §4),
// since no flanneld binary is at hand: a plain TUN flannel0 (IFF_TUN|
// IFF_NO_PI, no offloads, MTU underlay − 28, <subnet>.0/32, one route for
// the Network), a UDP socket on the interface address, and flanneld's
// per-packet proxy: one read, a route lookup in a linear table fed from
// etcd, a TTL decrement, one sendto; and the other way one recv, a TTL
// decrement, one write. flanneld's C loop polls both fds in one thread;
// here each direction has a goroutine, which changes nothing per packet.
// It does not send ICMP net-unreachable for unrouted packets, as flanneld does.
//
// Unlike flanneld, which receives into a buffer of exactly MTU bytes and
// silently truncates, it receives into 64 KiB and counts what a flanneld
// peer would have mangled: datagrams over MTU, and datagrams that are not
// exactly one raw IPv4 packet. It also records the TTL of arriving echo
// requests, as they were on the wire.
type flannelUDP struct {
	*netns.Host
	Subnet netip.Prefix
	Addr   netip.Addr // <subnet>.0 on flannel0
	MTU    int

	tun  *os.File
	conn *net.UDPConn
	port int

	mu     sync.Mutex
	routes []udpRoute
	wire   udpWire

	programmed leaseSet
}

type udpRoute struct {
	net  netip.Prefix
	next netip.AddrPort
}

// udpWire is what arrived at the emulated node's socket.
type udpWire struct {
	Datagrams int
	MaxSize   int
	Oversize  int           // larger than the emulated node's TUN MTU
	Malformed int           // not exactly one sane raw IPv4 packet
	EchoTTL   map[uint8]int // TTL of ICMP echo requests as they crossed the wire
	NoRoute   int           // TUN packets with no lease to send them to
}

// newFlannelUDP builds the node in h for subnet sn, writes its lease in
// flanneld's udp JSON and runs its proxy until the test ends.
func newFlannelUDP(t *testing.T, c *cluster, h *netns.Host, sn netip.Prefix, network netip.Prefix) *flannelUDP {
	t.Helper()
	f := &flannelUDP{Host: h, Subnet: sn, Addr: sn.Addr(), MTU: c.lab.Config().MTU - 28, port: 8285,
		wire: udpWire{EchoTTL: map[uint8]int{}}}
	const dev = "flannel0" // flanneld's name template flannel%d; unique inside the host's namespace
	if err := h.Do(func() (err error) {
		if f.tun, err = openPlainTUN(dev); err != nil {
			return err
		}
		f.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h.Addr.AsSlice(), Port: f.port})
		return err
	}); err != nil {
		if f.tun != nil {
			f.tun.Close()
		}
		t.Fatalf("flanneld udp emulation in %s: %v", h.Name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		f.tun.Close()
		f.conn.Close()
		wg.Wait()
	})
	for _, args := range [][]string{
		{"addr", "add", netip.PrefixFrom(f.Addr, 32).String(), "dev", dev},
		{"link", "set", dev, "mtu", strconv.Itoa(f.MTU), "up"},
		{"route", "add", network.String(), "dev", dev},
	} {
		if _, err := hostOutput(c.ctx, h, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	wg.Add(2)
	go func() { defer wg.Done(); f.tunToUDP() }()
	go func() { defer wg.Done(); f.udpToTUN() }()

	if err := putFlannelLease(c.ctx, c.cli, sn, netip.Prefix{}, fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":null}`, h.Addr)); err != nil {
		t.Fatalf("flanneld udp lease for %s: %v", h.Name, err)
	}
	followLeases(t, c.cli, sn, f)
	return f
}

// openPlainTUN opens a TUN as flanneld does: IFF_TUN|IFF_NO_PI, no vnet
// header, so the kernel hands over finished packets, one per read. It must
// run inside the target namespace.
func openPlainTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	// Non-blocking, so the runtime poller owns it and Close ends a Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// added and removed keep the route table: flanneld's udp nodes take every
// lease, whatever its BackendType, and reach it at PublicIP:<own Port>.
func (f *flannelUDP) added(l flannelLease) error {
	f.mu.Lock()
	f.routes = deleteRoute(f.routes, l.Subnet)
	f.routes = append(f.routes, udpRoute{net: l.Subnet, next: netip.AddrPortFrom(l.PublicIP, uint16(f.port))})
	f.mu.Unlock()
	f.programmed.set(l)
	return nil
}

func (f *flannelUDP) removed(l flannelLease) error {
	f.mu.Lock()
	f.routes = deleteRoute(f.routes, l.Subnet)
	f.mu.Unlock()
	f.programmed.drop(l.Subnet)
	return nil
}

func deleteRoute(rs []udpRoute, sn netip.Prefix) []udpRoute {
	out := rs[:0]
	for _, r := range rs {
		if r.net != sn {
			out = append(out, r)
		}
	}
	return out
}

// lookup is flanneld's: linear, and a hit moves to the front.
func (f *flannelUDP) lookup(dst netip.Addr) (netip.AddrPort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.routes {
		if r.net.Contains(dst) {
			copy(f.routes[1:i+1], f.routes[:i])
			f.routes[0] = r
			return r.next, true
		}
	}
	f.wire.NoRoute++
	return netip.AddrPort{}, false
}

func (f *flannelUDP) tunToUDP() {
	buf := make([]byte, f.MTU) // flanneld's single buffer of tun_mtu bytes
	for {
		n, err := f.tun.Read(buf)
		if err != nil {
			return // closed at cleanup
		}
		if n < 20 {
			continue
		}
		next, ok := f.lookup(netip.AddrFrom4([4]byte(buf[16:20])))
		if !ok || !decrementTTL(buf[:n]) {
			continue
		}
		f.conn.WriteToUDPAddrPort(buf[:n], next)
	}
}

func (f *flannelUDP) udpToTUN() {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pkt := buf[:n]
		ok := f.record(pkt)
		if !ok || !decrementTTL(pkt) {
			continue
		}
		f.tun.Write(pkt)
	}
}

// record notes one datagram and says whether a flanneld peer would have
// delivered it intact.
func (f *flannelUDP) record(pkt []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &f.wire
	w.Datagrams++
	w.MaxSize = max(w.MaxSize, len(pkt))
	if len(pkt) > f.MTU {
		w.Oversize++
		return false
	}
	if !rawIPv4(pkt) {
		w.Malformed++
		return false
	}
	if ihl := int(pkt[0]&0xf) * 4; pkt[9] == 1 && len(pkt) > ihl && pkt[ihl] == 8 {
		w.EchoTTL[pkt[8]]++
	}
	return true
}

func (f *flannelUDP) wireStats() udpWire {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.wire
	w.EchoTTL = map[uint8]int{}
	for k, v := range f.wire.EchoTTL {
		w.EchoTTL[k] = v
	}
	return w
}

// rawIPv4 reports whether pkt is exactly one IPv4 packet: version 4, a sane
// header length, a total length equal to the datagram's, a valid header
// checksum. Nothing before it, nothing after.
func rawIPv4(pkt []byte) bool {
	return len(pkt) >= 20 && pkt[0]>>4 == 4 && int(binary.BigEndian.Uint16(pkt[2:4])) == len(pkt) &&
		encaptest.IPv4HeaderValid(pkt)
}

// decrementTTL decrements the TTL as flanneld's proxy does on each side,
// and fixes the header checksum; false (drop) if it would reach 0.
func decrementTTL(pkt []byte) bool {
	if pkt[8] <= 1 {
		return false
	}
	pkt[8]--
	ihl := int(pkt[0]&0xf) * 4
	if ihl < 20 || ihl > len(pkt) {
		return false
	}
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:12], encaptest.Checksum(pkt[:ihl]))
	return true
}
