package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/feltnet/felt/netns"
)

// runScenario brings sc up on the lab, measures it once and takes it down.
func (l *underlayLab) runScenario(ctx context.Context, c *Config, sc Scenario, rep int) (s Sample, err error) {
	var dst netip.Addr
	var agents []*netns.Process
	switch sc {
	case Bare:
		dst = l.server.Addr
	case KernelVXLAN:
		hosts := []*netns.Host{l.client, l.server}
		if dst, err = kernelVXLANUp(ctx, hosts); err != nil {
			return s, err
		}
		defer func() { err = errors.Join(err, kernelVXLANDown(context.WithoutCancel(ctx), hosts)) }()
		if err := pingUntil(ctx, l.client, dst, 5); err != nil {
			return s, err
		}
	case FeltUDP, FeltVXLAN:
		if dst, agents, err = l.feltUp(ctx, c, sc, rep); err != nil {
			return s, err
		}
		defer func() { err = errors.Join(err, stopAll(agents)) }()
	default:
		return s, fmt.Errorf("scenario %q: unknown", sc)
	}
	return measure(ctx, c, l.client, dst, agents)
}

// measure runs the four measurements from client to dst, ping first while
// the path is idle. CPU is read around the single-stream TCP run.
func measure(ctx context.Context, c *Config, client *netns.Host, dst netip.Addr, agents []*netns.Process) (s Sample, err error) {
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
	if len(agents) > 0 {
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

	if r, err = iperf(ctx, client, dst, c.Duration, "-u", "-l", "64", "-b", "0"); err != nil {
		return s, err
	}
	s.UDPKpps, s.UDPLossPct = r.udpRate()

	if len(agents) > 0 {
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
	return s, nil
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
