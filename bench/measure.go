package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/feltnet/felt/bench/internal/rr"
	"github.com/feltnet/felt/netns"
)

// runScenario brings sc up on the lab, measures it once and takes it down.
func (l *underlayLab) runScenario(ctx context.Context, c *Config, sc Scenario, rep int) (s Sample, err error) {
	var dst netip.Addr
	var agents []*netns.Process
	switch {
	case sc == Bare:
		dst = l.server.Addr
	case sc == KernelVXLAN, sc == KernelVXLAN6:
		k, hosts := kernelVXLANOf(sc), []*netns.Host{l.client, l.server}
		if dst, err = k.up(ctx, hosts); err != nil {
			return s, fmt.Errorf("%s could not start: %w", sc, err)
		}
		defer func() { err = errors.Join(err, k.down(context.WithoutCancel(ctx), hosts)) }()
		if err := pingUntil(ctx, l.client, dst, 5*time.Second); err != nil {
			return s, err
		}
	case sc == WireGuardGo:
		if dst, agents, err = l.wireguardGoUp(ctx); err != nil {
			return s, err
		}
		defer func() { err = errors.Join(err, l.wireguardGoDown(context.WithoutCancel(ctx), agents)) }()
	case sc.felt() || sc.flanneld():
		if dst, agents, err = l.agentsUp(ctx, c, sc, rep); err != nil {
			return s, err
		}
		defer func() { err = errors.Join(err, l.agentsDown(context.WithoutCancel(ctx), sc, agents)) }()
	default:
		return s, fmt.Errorf("scenario %q: unknown", sc)
	}
	// iperf3 bound to dst: a UDP test's server answers from the socket it
	// connects back to the client on, whose source address the kernel
	// picks by route unless the socket is bound. Over a kernel-routed path
	// (host-gw, DirectRouting: dst is a pod address, the route back to the
	// client leaves through the underlay) that would be the underlay's
	// address, which the client's connected socket ignores, and every UDP
	// test would fail ("unable to read from stream socket").
	srv, err := l.server.Start(ctx, "iperf3", "-s", "-B", dst.String(), "-p", strconv.Itoa(iperfPort))
	if err != nil {
		return s, fmt.Errorf("%s: iperf3 server: %w", sc, err)
	}
	defer srv.Stop() // iperf3 exits 1 on SIGTERM: no error of the run
	return l.measure(ctx, c, dst, agents, sc.countsPackets())
}

// measure runs every measurement from the client to dst, ping first while
// the path is idle. CPU is read around the single-stream TCP run (the
// agents' being the processes of the path: felt's, flanneld's or
// wireguard-go); felt's agents' /metrics (scrape, where they count the
// packets they forward) around the three unpaced iperf3 runs.
func (l *underlayLab) measure(ctx context.Context, c *Config, dst netip.Addr, agents []*netns.Process, scrape bool) (s Sample, err error) {
	client := l.client
	if s.PingP50us, s.PingP99us, err = pingRTT(ctx, client, dst, c.Pings, "0.01"); err != nil {
		return s, err
	}
	// 1 ms apart the CPUs stay awake: what is left is the path's own cost,
	// without a VM's wake-from-idle per hop (felt's path has four).
	if s.PingBusyP50us, _, err = pingRTT(ctx, client, dst, c.Pings, "0.001"); err != nil {
		return s, err
	}

	hosts := make([]*netns.Host, len(agents))
	for i, p := range agents {
		hosts[i] = p.Host
	}
	var countersBefore agentCounters
	if scrape {
		if countersBefore, err = scrapeAll(hosts); err != nil {
			return s, err
		}
	}
	agentBefore, err := agentsCPU(agents)
	if err != nil {
		return s, err
	}
	sysBefore, err := systemBusy()
	if err != nil {
		return s, err
	}
	r, err := iperf(ctx, client, dst, c.Duration)
	if err != nil {
		return s, err
	}
	sysAfter, err := systemBusy()
	if err != nil {
		return s, err
	}
	agentAfter, err := agentsCPU(agents)
	if err != nil {
		return s, err
	}
	gb := r.End.SumReceived.Bytes / 1e9
	s.TCP1Gbps = r.End.SumReceived.BitsPerSec / 1e9
	s.SystemCPUPerGB = (sysAfter - sysBefore) / gb
	if len(agents) > 0 {
		s.AgentCPUPerGB = (agentAfter - agentBefore) / gb
	}

	if r, err = iperf(ctx, client, dst, c.Duration, "-P", strconv.Itoa(c.Streams)); err != nil {
		return s, err
	}
	s.TCPNGbps = r.End.SumReceived.BitsPerSec / 1e9

	// A UDP run that fails leaves the flood's figures at 0 (and the paced
	// ones too if UDP keeps failing), and the report says why; the rest of
	// the run still counts.
	if r, err = iperf(ctx, client, dst, c.Duration, "-u", "-l", "64", "-b", "0"); err != nil {
		s.UDPFloodError = firstLine(err.Error())
	} else {
		s.UDPKpps, s.UDPLossPct = r.udpRate()
	}

	if scrape {
		after, err := scrapeAll(hosts)
		if err != nil {
			return s, err
		}
		if pk := after.packets - countersBefore.packets; pk > 0 {
			s.AgentAllocsPerPacket = (after.mallocs - countersBefore.mallocs) / pk
		} else {
			return s, fmt.Errorf("agents forwarded no packets during the iperf3 runs (felt_packets_total %g → %g)", countersBefore.packets, after.packets)
		}
	}

	for _, load := range pacedLoads {
		// 64 B of payload at kpps thousand datagrams a second; pacing every
		// 100 µs (not iperf3's 1 ms) keeps the bursts to kpps/10 datagrams,
		// and 4 MiB socket buffers keep a receiver's scheduling hiccup from
		// counting as the path's loss.
		bps := strconv.Itoa(load.kpps * 1000 * 64 * 8)
		if r, err = iperf(ctx, client, dst, c.Duration, "-u", "-l", "64", "-b", bps, "--pacing-timer", "100", "-w", "4M"); err != nil {
			if s.UDPFloodError == "" {
				return s, err
			}
			// The flood's failure left iperf3 unable to run UDP to dst:
			// the paced figures stay 0 too (the report's note says so).
			break
		}
		*load.tx(&s) = r.sentKpps()
		*load.rx(&s), *load.loss(&s) = r.udpRate()
	}

	for _, t := range rrTests {
		res, err := l.requestResponse(dst, t.conns, t.size, c.Duration)
		if err != nil {
			return s, err
		}
		*t.tps(&s), *t.p50(&s), *t.p99(&s) = res.TPS, res.P50us, res.P99us
	}
	return s, nil
}

// requestResponse runs one request/response test from the client host to
// the lab's rr server at dst.
func (l *underlayLab) requestResponse(dst netip.Addr, conns, size int, d time.Duration) (rr.Result, error) {
	var cl *rr.Client
	if err := l.client.Do(func() (err error) {
		cl, err = rr.Dial(rrAddr(dst), conns, 2*time.Second)
		return err
	}); err != nil {
		return rr.Result{}, fmt.Errorf("request/response %d B × %d connections to %s: %w", size, conns, dst, err)
	}
	defer cl.Close()
	res, err := cl.Run(size, d)
	if err != nil {
		return res, fmt.Errorf("request/response %d B × %d connections to %s: %w", size, conns, dst, err)
	}
	return res, nil
}

// agentsCPU is the summed CPU seconds of the agent processes.
func agentsCPU(agents []*netns.Process) (float64, error) {
	var sum float64
	for _, p := range agents {
		v, err := procCPU(p.Pid())
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}
