package uring

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/feltnet/felt/tun/internal/flood"
)

// The benchmarks count packets as ops: run them with -benchtime=Nx (say
// 1000000x) so that one flood serves one measurement. Each reports the
// packet rate, the CPU time of this process (getrusage: user + system, all
// threads) per packet, and the share of packets lost.

// readFlood drains a TUN flooded by the flood child with read, which must
// return how many packets it got (blocking until at least one), and reports
// the drop rate at the TUN beside rate and CPU.
func readFlood(b *testing.B, read func(tt *testTUN, rc syscall.RawConn) int) {
	inThrowawayNetns(b)
	tt := newTUN(b)
	rc := tt.rawConn(b)
	startFlood(b)
	before := tt.stats(b)
	m := flood.StartMeter(b)
	got := 0
	for got < b.N {
		got += read(tt, rc)
	}
	m.Stop(got)
	after := tt.stats(b)
	taken, dropped := after.TxPackets-before.TxPackets, after.TxDropped-before.TxDropped
	b.ReportMetric(100*float64(dropped)/float64(taken+dropped), "drop-%")
}

// BenchmarkReadFlood compares felt's current way of draining the TUN (read(2)
// until EAGAIN inside RawConn.Read) with io_uring batches of 64 READs.
func BenchmarkReadFlood(b *testing.B) {
	const batch = 64
	bufs, sizes := makeBufs(batch, 2048)
	b.Run("read-until-EAGAIN", func(b *testing.B) {
		var got int
		fill := func(fd uintptr) bool {
			got = 0
			for got < batch {
				n, err := unix.Read(int(fd), bufs[got])
				if err != nil {
					break
				}
				sizes[got] = n
				got++
			}
			return got > 0
		}
		readFlood(b, func(tt *testTUN, rc syscall.RawConn) int {
			if err := rc.Read(fill); err != nil {
				b.Fatal(err)
			}
			return got
		})
	})
	b.Run("uring-64", func(b *testing.B) {
		r := newRing(b, batch)
		readFlood(b, func(tt *testTUN, rc syscall.RawConn) int {
			n, err := r.ReadConn(rc, bufs, sizes)
			if err != nil {
				b.Fatal(err)
			}
			return n
		})
	})
}

// udpDelivered returns how many datagrams the namespace's UDP layer took in
// (queued or dropped for a full receive buffer).
func udpDelivered(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/thread-self/net/snmp")
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		var sum uint64
		for i, name := range names {
			if name == "InDatagrams" || name == "RcvbufErrors" {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				sum += v
			}
		}
		return sum
	}
	b.Fatal("no Udp line in /proc/thread-self/net/snmp")
	return 0
}

// writeFlood writes b.N 64-byte packets into the TUN, to a bound UDP socket
// nobody reads (so the stack delivers them up to the socket's queue), with
// write, which writes the frames and returns how many it wrote.
func writeFlood(b *testing.B, write func(fd int, frames [][]byte) int) {
	inThrowawayNetns(b)
	tt := newTUN(b)
	receiver(b)
	frames := make([][]byte, 64)
	payload := make([]byte, payloadLen)
	for i := range frames {
		frames[i] = make([]byte, vnetHdrLen+pktLen)
		fillPayload(payload, uint32(i))
		udpFrame(frames[i], peerIP, tunIP, 5555, writePort, payload)
	}
	before := udpDelivered(b)
	m := flood.StartMeter(b)
	done := 0
	for done < b.N {
		done += write(tt.fd, frames[:min(len(frames), b.N-done)])
	}
	m.Stop(done)
	delivered := udpDelivered(b) - before
	b.ReportMetric(100*(1-float64(delivered)/float64(done)), "lost-%")
}

// BenchmarkWriteFlood compares one write(2) per packet with io_uring batches
// of 64 WRITEs.
func BenchmarkWriteFlood(b *testing.B) {
	b.Run("write-per-packet", func(b *testing.B) {
		writeFlood(b, func(fd int, frames [][]byte) int {
			for _, f := range frames {
				if _, err := unix.Write(fd, f); err != nil {
					b.Fatal(err)
				}
			}
			return len(frames)
		})
	})
	b.Run("uring-64", func(b *testing.B) {
		r := newRing(b, 64)
		writeFlood(b, func(fd int, frames [][]byte) int {
			n, err := r.Write(fd, frames, nil)
			if err != nil {
				b.Fatal(err)
			}
			return n
		})
	})
}
