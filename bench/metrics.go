package bench

import (
	"math"
	"slices"
)

// Sample is what one run of one scenario measured. Zero means "not
// measured" only for the Agent figures, which exist for felt scenarios alone.
type Sample struct {
	TCP1Gbps   float64 `json:"tcp1_gbps"`  // one TCP stream, receiver's rate
	TCPNGbps   float64 `json:"tcpn_gbps"`  // Config.Streams TCP streams, summed
	UDPKpps    float64 `json:"udp64_kpps"` // 64-byte UDP datagrams received per second
	UDPLossPct float64 `json:"udp64_loss_pct"`
	PingP50us  float64 `json:"ping_p50_us"`
	PingP99us  float64 `json:"ping_p99_us"`
	// PingBusyP50us is the p50 RTT of pings 1 ms apart, which keep the CPUs
	// from going idle between packets.
	PingBusyP50us float64 `json:"ping_busy_p50_us"`
	// AgentCPUPerGB is the CPU seconds (user+system) both felt agents used
	// during the single-stream TCP run, per GB (1e9 bytes) received.
	AgentCPUPerGB float64 `json:"agent_cpu_s_per_gb,omitempty"`
	// SystemCPUPerGB is the whole machine's busy CPU seconds (/proc/stat,
	// all CPUs) during the single-stream TCP run, per GB received: it
	// includes the kernel's share and the iperf3s, and anything else the
	// machine ran meanwhile, so it is noisy on a shared machine.
	SystemCPUPerGB float64 `json:"system_cpu_s_per_gb"`
	// AgentAllocsPerPacket is both agents' heap allocations (Go's
	// go_memstats_mallocs_total) per packet they forwarded (felt_packets_total,
	// both directions) over the three iperf3 runs: an upper bound on the
	// packet path's allocations, as the agents' background work (etcd
	// keepalives, the /metrics scrapes) counts too. Felt only.
	AgentAllocsPerPacket float64 `json:"agent_allocs_per_packet,omitempty"`
}

// metric describes one figure of a Sample for the table and the chart.
type metric struct {
	key   string // as in Sample's JSON
	label string
	unit  string
	agent bool // measured of felt's agents only
	get   func(*Sample) *float64
}

var metrics = []metric{
	{"tcp1_gbps", "TCP 1 stream", "Gbit/s", false, func(s *Sample) *float64 { return &s.TCP1Gbps }},
	{"tcpn_gbps", "TCP N streams", "Gbit/s", false, func(s *Sample) *float64 { return &s.TCPNGbps }},
	{"udp64_kpps", "UDP 64 B rx", "kpps", false, func(s *Sample) *float64 { return &s.UDPKpps }},
	{"udp64_loss_pct", "UDP 64 B loss", "%", false, func(s *Sample) *float64 { return &s.UDPLossPct }},
	{"ping_p50_us", "ping p50", "µs", false, func(s *Sample) *float64 { return &s.PingP50us }},
	{"ping_p99_us", "ping p99", "µs", false, func(s *Sample) *float64 { return &s.PingP99us }},
	{"ping_busy_p50_us", "ping 1ms p50", "µs", false, func(s *Sample) *float64 { return &s.PingBusyP50us }},
	{"agent_cpu_s_per_gb", "agent CPU", "s/GB", true, func(s *Sample) *float64 { return &s.AgentCPUPerGB }},
	{"system_cpu_s_per_gb", "system CPU", "s/GB", false, func(s *Sample) *float64 { return &s.SystemCPUPerGB }},
	{"agent_allocs_per_packet", "allocs", "/pkt", true, func(s *Sample) *float64 { return &s.AgentAllocsPerPacket }},
}

// medianSample is the per-figure median of runs (each figure on its own).
func medianSample(runs []Sample) Sample {
	var m Sample
	vals := make([]float64, 0, len(runs))
	for _, mt := range metrics {
		vals = vals[:0]
		for i := range runs {
			vals = append(vals, *mt.get(&runs[i]))
		}
		*mt.get(&m) = median(vals)
	}
	return m
}

// median of xs (the mean of the middle two for an even count); 0 if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}
