package tun

import (
	"testing"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/tun/internal/flood"
)

// The flood benchmarks count packets as ops: run them with -benchtime=Nx
// (say 1000000x) so that one flood serves one measurement, e.g.
//
//	go test -run '^$' -bench 'Flood' -benchtime=1000000x -count=3 ./tun/
//
// They report packets per second, the CPU time of this process per packet
// (getrusage, all threads; the flooder is another process) and, for reads,
// the share of packets the kernel dropped at the TUN because the reader was
// not there.

// BenchmarkReadFlood drains a TUN that a child process floods with 64-byte
// UDP packets (sendmmsg, 64 per call) through Device.Read.
func BenchmarkReadFlood(b *testing.B) {
	forEachPath(b, func(b *testing.B, opts Options) {
		inThrowawayNetns(b)
		opts.Moderate, _ = moderateFromEnv() // as the agent's: FELT_TUN_MODERATE=0 for the old behaviour
		dev, name := configuredWith(b, "f", opts)
		bufs, sizes := readBufs(dev.BatchSize())
		startFlood(b, "10.5.9.9:9999")
		tx0, drop0 := tunTx(b, name)
		m := flood.StartMeter(b)
		got, reads, naps0 := 0, 0, dev.rd.naps
		for got < b.N {
			n, err := dev.Read(bufs, sizes, headroom)
			if err != nil {
				b.Fatal(err)
			}
			got += n
			reads++
		}
		m.Stop(got)
		tx1, drop1 := tunTx(b, name)
		taken, dropped := tx1-tx0, drop1-drop0
		b.ReportMetric(100*float64(dropped)/float64(taken+dropped), "drop-%")
		b.ReportMetric(float64(got)/float64(reads), "pkts/read")
		b.ReportMetric(float64(dev.rd.naps-naps0)/float64(reads), "naps/read")
	})
}

// BenchmarkWriteFlood writes batches of 64-byte UDP packets of distinct
// flows (nothing coalesces: one write per packet on the read/writev path)
// into the TUN, to a bound socket nobody reads.
func BenchmarkWriteFlood(b *testing.B) {
	forEachPath(b, func(b *testing.B, opts Options) {
		inThrowawayNetns(b)
		dev, _ := configuredWith(b, "g", opts)
		bufs := udpBatch(b, dev.BatchSize(), sink(b), floodPayload)
		for i, p := range bufs {
			setUDPSrcPort(p[headroom:], uint16(10000+i))
		}
		m := flood.StartMeter(b)
		done := 0
		for done < b.N {
			n, err := dev.Write(bufs[:min(len(bufs), b.N-done)], headroom)
			if err != nil {
				b.Fatal(err)
			}
			done += n
		}
		m.Stop(done)
		var drops [drop.NumReasons]uint32
		dev.WriteDrops(&drops)
		for k, c := range drops {
			if c != 0 {
				b.Fatalf("Write dropped %d packets for %s: the benchmark's packets are broken", c, drop.Reason(k))
			}
		}
	})
}

// setUDPSrcPort changes the source port of an IPv4/UDP packet with a 20-byte
// header and fixes its checksum incrementally (RFC 1624).
func setUDPSrcPort(p []byte, port uint16) {
	old := uint16(p[20])<<8 | uint16(p[21])
	p[20], p[21] = byte(port>>8), byte(port)
	sum := ^(uint16(p[26])<<8 | uint16(p[27]))
	s := uint32(sum) + uint32(^old) + uint32(port)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		c = 0xffff
	}
	p[26], p[27] = byte(c>>8), byte(c)
}
