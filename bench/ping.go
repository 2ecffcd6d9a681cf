package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/netns"
)

// parsePingRTTs returns the round-trip times, in µs, of ping's per-reply
// lines ("... time=0.061 ms"). Lines without a time are skipped.
func parsePingRTTs(out []byte) []float64 {
	var rtts []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, " time=")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i+len(" time="):])
		if len(f) < 2 || f[1] != "ms" {
			continue
		}
		ms, err := strconv.ParseFloat(f[0], 64)
		if err != nil || ms < 0 {
			continue
		}
		rtts = append(rtts, ms*1000)
	}
	return rtts
}

// pingRTT pings dst count times, interval apart ("0.01": root may go below
// ping's 200 ms floor), and returns the p50 and p99 RTT in µs. Fewer than
// half the replies is an error: the path is broken, not slow.
func pingRTT(ctx context.Context, from *netns.Host, dst netip.Addr, count int, interval string) (p50, p99 float64, err error) {
	out, runErr := from.Command(ctx, "ping", pingArgs(dst, "-n", "-i", interval, "-W", "1", "-c", strconv.Itoa(count))...).CombinedOutput()
	rtts := parsePingRTTs(out)
	if len(rtts) < (count+1)/2 {
		return 0, 0, fmt.Errorf("ping %s from %s: %d of %d replies (%v): %.300s", dst, from.Name, len(rtts), count, runErr, out)
	}
	return percentile(rtts, 50), percentile(rtts, 99), nil
}

// pingUntil pings dst, one probe at a time, until a reply comes or within
// has passed; it tells when an overlay has started forwarding. A probe
// waits up to a second for its reply, but one that fails at once (an ICMP
// "net unreachable" from an agent that has not learnt the peer yet) is
// followed by a short pause, not the next probe straight away: 20 such
// failures once used up 20 tries in a few milliseconds, before the peer's
// lease had reached the agent.
func pingUntil(ctx context.Context, from *netns.Host, dst netip.Addr, within time.Duration) error {
	var out []byte
	var err error
	tries := 0
	for deadline := time.Now().Add(within); tries == 0 || time.Now().Before(deadline); {
		tries++
		out, err = from.Command(ctx, "ping", pingArgs(dst, "-n", "-c", "1", "-W", "1")...).CombinedOutput()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no ping reply from %s in %s within %v (%d probes): %w: %.300s", dst, from.Name, within, tries, err, out)
}

// pingArgs is ping's command line for dst: the flags, -6 for an IPv6 dst
// (iputils' ping takes either family, -6 makes the family explicit), dst.
func pingArgs(dst netip.Addr, flags ...string) []string {
	if dst.Is6() && !dst.Is4In6() {
		flags = append(flags, "-6")
	}
	return append(flags, dst.String())
}
