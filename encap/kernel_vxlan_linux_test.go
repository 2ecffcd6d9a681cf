//go:build linux

package encap

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/encap/encaptest"
	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/netns/netnstest"
)

// TestKernelVXLANPeer puts a real kernel vxlan device, programmed the way
// flanneld programs flannel.1 for a remote lease, in one namespace and
// felt's Conn plus VXLAN framing in another, joined by a veth. The kernel
// pings a pod address behind felt; felt answers with frames it built itself.
// The ping succeeds only if the kernel accepted felt's frames.
func TestKernelVXLANPeer(t *testing.T) {
	netnstest.NeedRoot(t)
	netnstest.NeedTools(t, "ip", "ping")
	pid := os.Getpid()
	nsK, nsF := fmt.Sprintf("fenc%dk", pid), fmt.Sprintf("fenc%df", pid)
	vethK, vethF := fmt.Sprintf("fenc%dk", pid), fmt.Sprintf("fenc%df", pid)
	vx := fmt.Sprintf("fvx%d", pid)
	const (
		vni       = 42
		kernelMAC = "02:fe:00:00:00:01"
		feltMAC   = "02:fe:00:00:00:02"
	)
	for _, ns := range []string{nsK, nsF} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", nsK, "link", "add", vethK, "type", "veth", "peer", "name", vethF, "netns", nsF)
	run(t, "ip", "-n", nsK, "addr", "add", "192.168.77.1/24", "dev", vethK)
	run(t, "ip", "-n", nsF, "addr", "add", "192.168.77.2/24", "dev", vethF)
	for _, c := range [][]string{{nsK, vethK}, {nsF, vethF}, {nsK, "lo"}, {nsF, "lo"}} {
		run(t, "ip", "-n", c[0], "link", "set", c[1], "up")
	}
	// flannel.1 as flanneld creates it, and the three entries it adds for a
	// remote lease 10.99.2.0/24 whose VtepMAC is felt's and PublicIP 192.168.77.2.
	run(t, "ip", "-n", nsK, "link", "add", vx, "address", kernelMAC, "type", "vxlan", "id", fmt.Sprint(vni),
		"local", "192.168.77.1", "dev", vethK, "dstport", "8472", "nolearning")
	run(t, "ip", "-n", nsK, "addr", "add", "10.99.1.0/32", "dev", vx)
	run(t, "ip", "-n", nsK, "link", "set", vx, "up")
	run(t, "ip", "-n", nsK, "neigh", "replace", "10.99.2.0", "lladdr", feltMAC, "dev", vx, "nud", "permanent")
	run(t, "bridge", "-n", nsK, "fdb", "append", feltMAC, "dev", vx, "dst", "192.168.77.2", "self", "permanent")
	run(t, "ip", "-n", nsK, "route", "replace", "10.99.2.0/24", "via", "10.99.2.0", "dev", vx, "onlink")

	var conn *Conn
	inNetns(t, nsF, func() {
		var err error
		conn, err = Listen(netip.MustParseAddrPort("0.0.0.0:8472"), DefaultOptions())
		if err != nil {
			t.Fatalf("Listen in %s: %v", nsF, err)
		}
	})
	t.Cleanup(func() { conn.Close() })
	v := NewVXLAN(vni, mac(feltMAC))
	kernel := netip.MustParseAddrPort("192.168.77.1:8472")

	ctx, cancel := context.WithTimeout(context.Background(), lossGuard)
	defer cancel()
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", nsK, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "10.99.2.5")
	var pingOut bytes.Buffer
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatalf("start ping: %v", err)
	}
	pingDone := make(chan error, 1)
	go func() { pingDone <- ping.Wait(); conn.Close() }()

	bufs := newBufs(8, Headroom+MaxDatagram)
	sizes := make([]int, 8)
	from := make([]netip.AddrPort, 8)
	answered := 0
	for {
		n, err := conn.ReadBatch(bufs, sizes, from, Headroom)
		if err != nil {
			break // ping finished (or timed out) and closed the conn
		}
		for i := range n {
			frame := bufs[i][Headroom : Headroom+sizes[i]]
			if !bytes.Equal(frame[:8], []byte{0x08, 0, 0, 0, 0, 0, vni, 0}) || [6]byte(frame[8:14]) != mac(feltMAC) || [6]byte(frame[14:20]) != mac(kernelMAC) {
				t.Errorf("kernel frame header % x: want VNI %d, dst %s, src %s", frame[:22], vni, feltMAC, kernelMAC)
			}
			inner, r := v.Decap(frame)
			if r != drop.OK {
				t.Errorf("Decap of the kernel's frame from %s: %v", from[i], r)
				continue
			}
			reply, ok := echoReply(inner)
			if !ok {
				continue // not an echo request (none expected, but harmless)
			}
			// Write the reply after the headroom and frame it in place.
			buf := bufs[i][:Headroom+len(reply)]
			copy(buf[Headroom:], reply)
			out, r := v.Encap(buf, Headroom, len(reply), mac(kernelMAC))
			if r != drop.OK {
				t.Fatalf("Encap reply: %v", r)
			}
			if err := conn.WriteBatch([][]byte{out}, []netip.AddrPort{kernel}); err != nil {
				t.Fatalf("WriteBatch to the kernel: %v", err)
			}
			answered++
		}
	}
	if err := <-pingDone; err != nil {
		t.Fatalf("kernel ping through vxlan failed after felt answered %d requests: %v\n%s", answered, err, pingOut.String())
	}
	if !strings.Contains(pingOut.String(), "3 received") {
		t.Fatalf("ping output lacks 3 replies:\n%s", pingOut.String())
	}
}

// run runs a command, failing the test if it fails (netnstest.Output).
func run(t *testing.T, name string, args ...string) { netnstest.Output(t, name, args...) }

func mac(s string) [6]byte {
	var m [6]byte
	fmt.Sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5])
	return m
}

// inNetns runs f on an OS thread switched into network namespace ns, so
// sockets f opens live there.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open own netns: %v", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open netns %s: %v", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns %s: %v", ns, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("setns back: %v", err) // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

// echoReply turns an IPv4 ICMP echo request into its reply (addresses
// swapped, type 0, checksums recomputed), or reports false.
func echoReply(req []byte) ([]byte, bool) {
	if len(req) < 28 || req[0] != 0x45 || req[9] != 1 || req[20] != 8 {
		return nil, false
	}
	p := bytes.Clone(req)
	copy(p[12:16], req[16:20])
	copy(p[16:20], req[12:16])
	p[8] = 64
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:12], encaptest.Checksum(p[:20]))
	p[20] = 0 // echo reply
	p[22], p[23] = 0, 0
	binary.BigEndian.PutUint16(p[22:24], encaptest.Checksum(p[20:]))
	return p, true
}
