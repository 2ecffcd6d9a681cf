// Package flood holds what the TUN flood benchmarks of tun and
// tun/internal/uring share: the flooding child process and a meter for
// benchmarks that count packets as ops (run them with -benchtime=Nx so that
// one flood serves one measurement).
package flood

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Meter reports the packet rate and the CPU time of the whole process per
// packet of one measurement, from StartMeter to Stop.
type Meter struct {
	b     *testing.B
	start time.Time
	cpu   time.Duration
}

// StartMeter resets b's timer and starts measuring.
func StartMeter(b *testing.B) *Meter {
	b.ResetTimer()
	return &Meter{b: b, start: time.Now(), cpu: cpuTime(b)}
}

// Stop stops b's timer and reports kpps and cpu-µs/pkt for pkts packets;
// ns/op is reported as 0, since an op is a packet the benchmark did not
// send.
func (m *Meter) Stop(pkts int) {
	m.b.StopTimer()
	wall, cpu := time.Since(m.start), cpuTime(m.b)-m.cpu
	m.b.ReportMetric(float64(pkts)/wall.Seconds()/1e3, "kpps")
	m.b.ReportMetric(float64(cpu.Microseconds())/float64(pkts), "cpu-µs/pkt")
	m.b.ReportMetric(0, "ns/op")
}

// cpuTime is this process's user + system CPU time (getrusage: all
// threads; a child's is not in it).
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
