package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

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

// pingUntil pings dst once a time until a reply comes or tries run out; it
// tells when an overlay has started forwarding.
func pingUntil(ctx context.Context, from *netns.Host, dst netip.Addr, tries int) error {
	var out []byte
	var err error
	for i := 0; i < tries; i++ {
		out, err = from.Command(ctx, "ping", pingArgs(dst, "-n", "-c", "1", "-W", "1")...).CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("no ping reply from %s in %s after %d tries: %w: %.300s", dst, from.Name, tries, err, out)
}

// pingArgs is ping's command line for dst: the flags, -6 for an IPv6 dst
// (iputils' ping takes either family, -6 makes the family explicit), dst.
func pingArgs(dst netip.Addr, flags ...string) []string {
	if dst.Is6() && !dst.Is4In6() {
		flags = append(flags, "-6")
	}
	return append(flags, dst.String())
}
