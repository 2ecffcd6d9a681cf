package agent

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/router"
)

// counters flattens a router snapshot for /status.
func counters(s router.Snapshot) map[string]uint64 {
	m := map[string]uint64{
		"out_packets": s.OutPackets, "out_bytes": s.OutBytes,
		"in_packets": s.InPackets, "in_bytes": s.InBytes, "read_errors": s.ReadErrors,
		"linger_hits": s.LingerHits, "linger_misses": s.LingerMisses, "linger_ready": s.LingerReady,
	}
	for r := drop.Reason(1); r < drop.NumReasons; r++ {
		if n := s.Drops[r]; n > 0 {
			m["drop_"+r.String()] = n
		}
	}
	return m
}

// collector exports the engine's and the lease's state to Prometheus (eng is
// nil without felt's packet engine: wireguard has wgCollector instead,
// host-gw, alloc and extension have no packet path). It reads the live
// atomic counters at scrape time: nothing is added to the packet path for
// metrics.
type collector struct {
	st       *state
	eng      engineView // nil for a backend without felt's packet engine
	rejected *ruleCounts
	// tunDrops, without the engine, is what felt's TUN dropped under
	// another packet path (wireguard-go's); nil if there is none.
	tunDrops func() [drop.NumReasons]uint64

	packets, bytes, drops, peers, byPath, expiry, renewals, reacquired, rejects *prometheus.Desc
}

// ruleCounts counts rejected leases by rule: the watch goroutine adds, a
// scrape reads.
type ruleCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func newRuleCounts() *ruleCounts { return &ruleCounts{n: map[string]uint64{}} }

func (c *ruleCounts) add(rule string) {
	c.mu.Lock()
	c.n[rule]++
	c.mu.Unlock()
}

// snapshot returns the rules seen so far, sorted, and their counts.
func (c *ruleCounts) snapshot() ([]string, []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rules := make([]string, 0, len(c.n))
	for r := range c.n {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	counts := make([]uint64, len(rules))
	for i, r := range rules {
		counts[i] = c.n[r]
	}
	return rules, counts
}

func newMetrics(st *state, eng engineView, tunDrops func() [drop.NumReasons]uint64, rejected *ruleCounts) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&collector{st: st, eng: eng, tunDrops: tunDrops, rejected: rejected,
		packets: prometheus.NewDesc("felt_packets_total", "Inner IP packets forwarded, by direction (out: TUN to peers, in: peers to TUN).", []string{"direction"}, nil),
		bytes:   prometheus.NewDesc("felt_bytes_total", "Inner IP bytes forwarded, by direction.", []string{"direction"}, nil),
		drops:   prometheus.NewDesc("felt_drops_total", "Packets dropped, by reason.", []string{"reason"}, nil),
		peers:   prometheus.NewDesc("felt_peers", "Peers in the forwarding table.", nil, nil),
		byPath: prometheus.NewDesc("felt_peers_by_path",
			"Peers by how packets reach them: direct (kernel route via the PublicIP), tunnelled (felt's packet path), external (extension).",
			[]string{"path"}, nil),
		expiry:     prometheus.NewDesc("felt_lease_expiry_timestamp_seconds", "When the own subnet lease expires (Unix time).", []string{"subnet"}, nil),
		renewals:   prometheus.NewDesc("felt_lease_renewals_total", "Renewals of the own subnet lease.", nil, nil),
		reacquired: prometheus.NewDesc("felt_lease_reacquired_total", "Times the own lease was lost and a lease taken again.", nil, nil),
		rejects: prometheus.NewDesc("felt_leases_rejected_total",
			"Peer leases rejected (not put in the peer table), by the rule they broke; once per lease and reason.", []string{"rule"}, nil),
	})
	return reg
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.drops, c.peers, c.byPath, c.expiry, c.renewals, c.reacquired, c.rejects} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	byPath := c.st.pathCounts()
	for _, p := range []string{pathDirect, pathTunnelled, pathExternal} {
		ch <- prometheus.MustNewConstMetric(c.byPath, prometheus.GaugeValue, float64(byPath[p]), p)
	}
	if c.eng != nil {
		c.collectEngine(ch)
	} else {
		n := 0
		for _, v := range byPath {
			n += v
		}
		ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(n))
		if c.tunDrops != nil {
			d := c.tunDrops()
			for r := drop.Reason(1); r < drop.NumReasons; r++ {
				ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(d[r]), r.String())
			}
		}
	}
	c.collectLease(ch)
}

// collectEngine exports the packet backends' router counters.
func (c *collector) collectEngine(ch chan<- prometheus.Metric) {
	s := c.eng.Counters()
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.OutPackets), "out")
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.InPackets), "in")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.OutBytes), "out")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.InBytes), "in")
	for r := drop.Reason(1); r < drop.NumReasons; r++ {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(s.Drops[r]), r.String())
	}
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(c.eng.Table().Len()))
}

func (c *collector) collectLease(ch chan<- prometheus.Metric) {
	c.st.mu.Lock()
	own, renewals, reacquired := c.st.own, c.st.renewals, c.st.reacquired
	c.st.mu.Unlock()
	if !own.Expiration.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(own.Expiration.Unix()), own.Key().String())
	}
	ch <- prometheus.MustNewConstMetric(c.renewals, prometheus.CounterValue, float64(renewals))
	ch <- prometheus.MustNewConstMetric(c.reacquired, prometheus.CounterValue, float64(reacquired))
	rules, counts := c.rejected.snapshot()
	for i, r := range rules {
		ch <- prometheus.MustNewConstMetric(c.rejects, prometheus.CounterValue, float64(counts[i]), r)
	}
}
