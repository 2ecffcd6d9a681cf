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
	// UDPFloodError is why the 64 B flood gave no figures (its fields are
	// then 0), empty when it ran.
	UDPFloodError string  `json:"udp64_flood_error,omitempty"`
	PingP50us     float64 `json:"ping_p50_us"`
	PingP99us     float64 `json:"ping_p99_us"`
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

	// Request/response (bench/internal/rr, like netperf's TCP_RR): message
	// size 1 B or 1 KiB, over 1 or 16 TCP connections; transactions per
	// second (all connections) and per-transaction latency percentiles.
	RR1C1TPS     float64 `json:"rr1_c1_tps"`
	RR1C1P50us   float64 `json:"rr1_c1_p50_us"`
	RR1C1P99us   float64 `json:"rr1_c1_p99_us"`
	RR1kC1TPS    float64 `json:"rr1k_c1_tps"`
	RR1kC1P50us  float64 `json:"rr1k_c1_p50_us"`
	RR1kC1P99us  float64 `json:"rr1k_c1_p99_us"`
	RR1C16TPS    float64 `json:"rr1_c16_tps"`
	RR1C16P50us  float64 `json:"rr1_c16_p50_us"`
	RR1C16P99us  float64 `json:"rr1_c16_p99_us"`
	RR1kC16TPS   float64 `json:"rr1k_c16_tps"`
	RR1kC16P50us float64 `json:"rr1k_c16_p50_us"`
	RR1kC16P99us float64 `json:"rr1k_c16_p99_us"`

	// 64-byte UDP paced at an offered 50, 100 and 200 kpps (iperf3 -b with
	// a 100 µs pacing timer): datagrams sent and received per second and
	// the loss, which at a rate the path can carry says how it behaves,
	// where the flood's loss says how far the sender overran.
	UDP50kTxKpps   float64 `json:"udp64_50k_tx_kpps"`
	UDP50kRxKpps   float64 `json:"udp64_50k_rx_kpps"`
	UDP50kLossPct  float64 `json:"udp64_50k_loss_pct"`
	UDP100kTxKpps  float64 `json:"udp64_100k_tx_kpps"`
	UDP100kRxKpps  float64 `json:"udp64_100k_rx_kpps"`
	UDP100kLossPct float64 `json:"udp64_100k_loss_pct"`
	UDP200kTxKpps  float64 `json:"udp64_200k_tx_kpps"`
	UDP200kRxKpps  float64 `json:"udp64_200k_rx_kpps"`
	UDP200kLossPct float64 `json:"udp64_200k_loss_pct"`
}

// rrTests are the request/response runs: message size, connections and
// where each puts its figures.
var rrTests = []struct {
	size, conns   int
	tps, p50, p99 func(*Sample) *float64
}{
	{1, 1, func(s *Sample) *float64 { return &s.RR1C1TPS }, func(s *Sample) *float64 { return &s.RR1C1P50us }, func(s *Sample) *float64 { return &s.RR1C1P99us }},
	{1024, 1, func(s *Sample) *float64 { return &s.RR1kC1TPS }, func(s *Sample) *float64 { return &s.RR1kC1P50us }, func(s *Sample) *float64 { return &s.RR1kC1P99us }},
	{1, 16, func(s *Sample) *float64 { return &s.RR1C16TPS }, func(s *Sample) *float64 { return &s.RR1C16P50us }, func(s *Sample) *float64 { return &s.RR1C16P99us }},
	{1024, 16, func(s *Sample) *float64 { return &s.RR1kC16TPS }, func(s *Sample) *float64 { return &s.RR1kC16P50us }, func(s *Sample) *float64 { return &s.RR1kC16P99us }},
}

// pacedLoads are the offered rates of the paced 64-byte UDP runs.
var pacedLoads = []struct {
	kpps         int
	tx, rx, loss func(*Sample) *float64
}{
	{50, func(s *Sample) *float64 { return &s.UDP50kTxKpps }, func(s *Sample) *float64 { return &s.UDP50kRxKpps }, func(s *Sample) *float64 { return &s.UDP50kLossPct }},
	{100, func(s *Sample) *float64 { return &s.UDP100kTxKpps }, func(s *Sample) *float64 { return &s.UDP100kRxKpps }, func(s *Sample) *float64 { return &s.UDP100kLossPct }},
	{200, func(s *Sample) *float64 { return &s.UDP200kTxKpps }, func(s *Sample) *float64 { return &s.UDP200kRxKpps }, func(s *Sample) *float64 { return &s.UDP200kLossPct }},
}

// metric describes one figure of a Sample for the table and the chart.
type metric struct {
	key   string // as in Sample's JSON
	label string
	unit  string
	agent bool // measured of the agents only (felt's, or flanneld's CPU)
	get   func(*Sample) *float64
}

// lossMetric says the figure is a loss percentage: its spread is judged in
// percentage points, as 0.1 % against 0.3 % is no noise worth a flag.
func (m metric) lossMetric() bool { return m.unit == "%" }

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
	{"rr1_c1_tps", "RR 1 B ×1 conn", "tps", false, func(s *Sample) *float64 { return &s.RR1C1TPS }},
	{"rr1_c1_p50_us", "RR 1 B ×1 p50", "µs", false, func(s *Sample) *float64 { return &s.RR1C1P50us }},
	{"rr1_c1_p99_us", "RR 1 B ×1 p99", "µs", false, func(s *Sample) *float64 { return &s.RR1C1P99us }},
	{"rr1k_c1_tps", "RR 1 KiB ×1 conn", "tps", false, func(s *Sample) *float64 { return &s.RR1kC1TPS }},
	{"rr1k_c1_p50_us", "RR 1 KiB ×1 p50", "µs", false, func(s *Sample) *float64 { return &s.RR1kC1P50us }},
	{"rr1k_c1_p99_us", "RR 1 KiB ×1 p99", "µs", false, func(s *Sample) *float64 { return &s.RR1kC1P99us }},
	{"rr1_c16_tps", "RR 1 B ×16 conns", "tps", false, func(s *Sample) *float64 { return &s.RR1C16TPS }},
	{"rr1_c16_p50_us", "RR 1 B ×16 p50", "µs", false, func(s *Sample) *float64 { return &s.RR1C16P50us }},
	{"rr1_c16_p99_us", "RR 1 B ×16 p99", "µs", false, func(s *Sample) *float64 { return &s.RR1C16P99us }},
	{"rr1k_c16_tps", "RR 1 KiB ×16 conns", "tps", false, func(s *Sample) *float64 { return &s.RR1kC16TPS }},
	{"rr1k_c16_p50_us", "RR 1 KiB ×16 p50", "µs", false, func(s *Sample) *float64 { return &s.RR1kC16P50us }},
	{"rr1k_c16_p99_us", "RR 1 KiB ×16 p99", "µs", false, func(s *Sample) *float64 { return &s.RR1kC16P99us }},
	{"udp64_50k_tx_kpps", "UDP 50k sent", "kpps", false, func(s *Sample) *float64 { return &s.UDP50kTxKpps }},
	{"udp64_50k_rx_kpps", "UDP 50k rx", "kpps", false, func(s *Sample) *float64 { return &s.UDP50kRxKpps }},
	{"udp64_50k_loss_pct", "UDP 50k loss", "%", false, func(s *Sample) *float64 { return &s.UDP50kLossPct }},
	{"udp64_100k_tx_kpps", "UDP 100k sent", "kpps", false, func(s *Sample) *float64 { return &s.UDP100kTxKpps }},
	{"udp64_100k_rx_kpps", "UDP 100k rx", "kpps", false, func(s *Sample) *float64 { return &s.UDP100kRxKpps }},
	{"udp64_100k_loss_pct", "UDP 100k loss", "%", false, func(s *Sample) *float64 { return &s.UDP100kLossPct }},
	{"udp64_200k_tx_kpps", "UDP 200k sent", "kpps", false, func(s *Sample) *float64 { return &s.UDP200kTxKpps }},
	{"udp64_200k_rx_kpps", "UDP 200k rx", "kpps", false, func(s *Sample) *float64 { return &s.UDP200kRxKpps }},
	{"udp64_200k_loss_pct", "UDP 200k loss", "%", false, func(s *Sample) *float64 { return &s.UDP200kLossPct }},
}

// NoisySpreadPct is the spread over which a figure is flagged as noisy:
// (max − min) / median in percent, or max − min in percentage points for a
// loss.
const NoisySpreadPct = 15

// stats are the per-figure minimum, median and maximum of runs, the spread
// of each figure measured more than once, and the figures whose spread is
// over NoisySpreadPct, in metrics' order.
func stats(runs []Sample) (lo, med, hi Sample, spread map[string]float64, noisy []string) {
	med = medianSample(runs)
	spread = map[string]float64{}
	for _, mt := range metrics {
		if len(runs) == 0 {
			break
		}
		l, h := math.Inf(1), math.Inf(-1)
		for i := range runs {
			v := *mt.get(&runs[i])
			l, h = math.Min(l, v), math.Max(h, v)
		}
		*mt.get(&lo), *mt.get(&hi) = l, h
		if len(runs) < 2 {
			continue
		}
		var sp float64
		switch m := *mt.get(&med); {
		case mt.lossMetric():
			sp = h - l
		case m != 0:
			sp = (h - l) / math.Abs(m) * 100
		default:
			continue
		}
		spread[mt.key] = sp
		if sp > NoisySpreadPct {
			noisy = append(noisy, mt.key)
		}
	}
	return lo, med, hi, spread, noisy
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
