package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/netns"
)

// iperfResult is what bench reads of iperf3 -J's report.
type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Seconds float64 `json:"seconds"`
			Packets float64 `json:"packets"` // UDP: datagrams sent
		} `json:"sum_sent"`
		SumReceived struct {
			Seconds     float64 `json:"seconds"`
			Bytes       float64 `json:"bytes"`
			BitsPerSec  float64 `json:"bits_per_second"`
			Packets     float64 `json:"packets"`      // UDP: datagrams the receiver accounted for
			LostPackets float64 `json:"lost_packets"` // UDP
			LostPercent float64 `json:"lost_percent"` // UDP, iperf3's own (of the packets sent)
		} `json:"sum_received"`
	} `json:"end"`
}

// parseIperf decodes iperf3 -J output and checks that it holds a result.
func parseIperf(out []byte) (iperfResult, error) {
	var r iperfResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("iperf3 -J output is not JSON: %w: %.200q", err, out)
	}
	if r.Error != "" {
		return r, fmt.Errorf("iperf3: %s", r.Error)
	}
	s := r.End.SumReceived
	if s.Seconds <= 0 || s.Bytes <= 0 {
		return r, fmt.Errorf("iperf3 reported nothing received (seconds %g, bytes %g)", s.Seconds, s.Bytes)
	}
	return r, nil
}

// udpRate is the received datagram rate in kpps and the loss in percent.
func (r iperfResult) udpRate() (kpps, lossPct float64) {
	s := r.End.SumReceived
	return (s.Packets - s.LostPackets) / s.Seconds / 1e3, s.LostPercent
}

// sentKpps is the UDP datagrams the sender sent per second, in thousands:
// what a paced run really offered.
func (r iperfResult) sentKpps() float64 {
	s := r.End.SumSent
	if s.Seconds <= 0 {
		return 0
	}
	return s.Packets / s.Seconds / 1e3
}

// iperf runs an iperf3 client in from against the server at dst with the
// given extra flags. The server may still be starting, or finishing the
// previous test: such refusals are retried for a few seconds.
func iperf(ctx context.Context, from *netns.Host, dst netip.Addr, d time.Duration, extra ...string) (iperfResult, error) {
	args := append([]string{"-c", dst.String(), "-p", strconv.Itoa(iperfPort), "-t", strconv.Itoa(int(d / time.Second)), "-J"}, extra...)
	if dst.Is6() && !dst.Is4In6() {
		args = append(args, "-6")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, runErr := from.Command(ctx, "iperf3", args...).Output()
		r, err := parseIperf(out)
		if err == nil {
			return r, nil
		}
		if runErr != nil {
			err = fmt.Errorf("%w (%v)", err, runErr)
		}
		msg := strings.ToLower(err.Error())
		retry := strings.Contains(msg, "connection refused") || strings.Contains(msg, "server is busy")
		if !retry || time.Now().After(deadline) || ctx.Err() != nil {
			return r, fmt.Errorf("iperf3 %s in %s: %w", strings.Join(args, " "), from.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
