package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/netns"
)

// agentHealthPort is where every agent serves /metrics, on 127.0.0.1 inside
// its own namespace (so one port serves all).
const agentHealthPort = 8479

// agentCounters is what bench reads of an agent's /metrics.
type agentCounters struct {
	mallocs float64 // go_memstats_mallocs_total: heap allocations since start
	packets float64 // felt_packets_total, both directions
}

// scrapeAgent reads the agent's /metrics in host h. The connection is made
// inside h's namespace (Host.DialContext) and used from here on, as sockets
// keep the namespace they were made in.
func scrapeAgent(h *netns.Host) (agentCounters, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := h.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(agentHealthPort)))
	if err != nil {
		return agentCounters{}, fmt.Errorf("metrics of the agent in %s: %w", h.Name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.0\r\nHost: felt\r\n\r\n"); err != nil {
		return agentCounters{}, fmt.Errorf("metrics of the agent in %s: %w", h.Name, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return agentCounters{}, fmt.Errorf("metrics of the agent in %s: %w", h.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return agentCounters{}, fmt.Errorf("metrics of the agent in %s: HTTP %s", h.Name, resp.Status)
	}
	c, err := parseAgentMetrics(resp.Body)
	if err != nil {
		return c, fmt.Errorf("metrics of the agent in %s: %w", h.Name, err)
	}
	return c, nil
}

// parseAgentMetrics picks the heap allocation and packet counters out of
// Prometheus' text format.
func parseAgentMetrics(r io.Reader) (agentCounters, error) {
	var c agentCounters
	var seenMallocs, seenPackets bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, val := line[:i], line[i+1:]
		switch {
		case name == "go_memstats_mallocs_total":
			seenMallocs = true
		case strings.HasPrefix(name, "felt_packets_total{"):
			seenPackets = true
		default:
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return c, fmt.Errorf("metric %s value %q: %w", name, val, err)
		}
		if name == "go_memstats_mallocs_total" {
			c.mallocs = v
		} else {
			c.packets += v
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	if !seenMallocs || !seenPackets {
		return c, fmt.Errorf("no go_memstats_mallocs_total or felt_packets_total in /metrics")
	}
	return c, nil
}

// scrapeAll sums the counters of the agents in hosts.
func scrapeAll(hosts []*netns.Host) (agentCounters, error) {
	var sum agentCounters
	for _, h := range hosts {
		c, err := scrapeAgent(h)
		if err != nil {
			return sum, err
		}
		sum.mallocs += c.mallocs
		sum.packets += c.packets
	}
	return sum, nil
}
