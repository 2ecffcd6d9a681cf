package bench

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

// sumReceived decodes end.sum_received of an iperf3 -J file generically, as
// an independent check of parseIperf's typed decoding.
func sumReceived(t *testing.T, b []byte) map[string]float64 {
	t.Helper()
	var v struct {
		End struct {
			SumReceived map[string]any `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for k, x := range v.End.SumReceived {
		if f, ok := x.(float64); ok {
			out[k] = f
		}
	}
	return out
}

// parseFile parses testdata/name with parseIperf and returns the result and
// the file.
func parseFile(t *testing.T, name string) (iperfResult, []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseIperf(b)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestParseIperfTCP(t *testing.T) {
	r, b := parseFile(t, "iperf3-tcp.json")
	want := sumReceived(t, b)
	got := r.End.SumReceived
	if got.BitsPerSec != want["bits_per_second"] || got.Bytes != want["bytes"] || got.Seconds != want["seconds"] || got.BitsPerSec <= 0 {
		t.Fatalf("parsed %+v, file has %v", got, want)
	}
}

func TestParseIperfUDP(t *testing.T) {
	r, b := parseFile(t, "iperf3-udp64.json")
	want := sumReceived(t, b)
	kpps, loss := r.udpRate()
	// Received datagrams are the received bytes over the 64-byte length.
	wantKpps := want["bytes"] / 64 / want["seconds"] / 1e3
	if math.Abs(kpps-wantKpps) > 1e-6*wantKpps {
		t.Errorf("kpps %g, want %g (bytes/64/seconds)", kpps, wantKpps)
	}
	if math.Abs(loss-want["lost_percent"]) > 1e-9 {
		t.Errorf("loss %g%%, file says %g%%", loss, want["lost_percent"])
	}
}

func TestParseIperfErrors(t *testing.T) {
	refused, err := os.ReadFile("testdata/iperf3-refused.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"refused":  string(refused),
		"not json": "iperf3: error - unable to connect",
		"empty":    `{"end":{}}`,
	} {
		if _, err := parseIperf([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "refused" && !strings.Contains(strings.ToLower(err.Error()), "connection refused") {
			t.Errorf("refused: error %q does not say so (the retry looks for it)", err)
		}
	}
}

func TestParsePingRTTs(t *testing.T) {
	b, err := os.ReadFile("testdata/ping.txt")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "From 10.5.0.1 icmp_seq=9 Destination Host Unreachable\n64 bytes from x: time=abc ms\n64 bytes: time=1 s\n"...)
	got := parsePingRTTs(b)
	want := strings.Count(string(b), " ms\n") - 2 // reply lines; minus the summary and the bad "abc" line
	if len(got) != want {
		t.Fatalf("%d RTTs, want %d: %v", len(got), want, got)
	}
	if got[0] != 162 || got[1] != 26 {
		t.Fatalf("RTTs %v: want µs, first two 162 and 26 as in the file", got)
	}
}

func TestPercentileMedian(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if m := median(xs); m != 3 {
		t.Errorf("median %v = %g", xs, m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median = %g, want 2.5", m)
	}
	if xs[0] != 5 {
		t.Errorf("median sorted its input: %v", xs)
	}
	var hundred []float64
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, float64(i))
	}
	for p, want := range map[float64]float64{50: 50, 99: 99, 100: 100, 1: 1} {
		if got := percentile(hundred, p); got != want {
			t.Errorf("p%g of 1..100 = %g, want %g", p, got, want)
		}
	}
	if median(nil) != 0 || percentile(nil, 50) != 0 {
		t.Error("empty input must give 0")
	}
}

func TestParseProcStat(t *testing.T) {
	// A name with spaces and a ')' must not shift the fields.
	line := "4242 (felt a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 123 0 0\n"
	got, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != (250+75)/float64(userHZ) {
		t.Fatalf("cpu %g, want %g", got, (250+75)/float64(userHZ))
	}
	for _, bad := range []string{"", "12 (x) S 1 2", "12 (x) S 1 2 3 4 5 6 7 8 9 10 x 5 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	self, err := procCPU(os.Getpid())
	if err != nil || self < 0 {
		t.Fatalf("own cpu: %g, %v", self, err)
	}
}

func TestParseSystemBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseSystemBusy("cpu  100 1 50 9000 30 2 3 4 7 7\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(100+1+50+2+3+4) / userHZ; got != want {
		t.Fatalf("busy %g, want %g (idle, iowait and guest excluded)", got, want)
	}
	if _, err := parseSystemBusy("intr 1 2 3"); err == nil {
		t.Error("no cpu line: no error")
	}
	if s, err := systemBusy(); err != nil || s <= 0 {
		t.Fatalf("this machine: %g, %v", s, err)
	}
}

func TestReadSubnet(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/subnet.env"
	if _, err := readSubnet(f); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want not-exist", err)
	}
	os.WriteFile(f, []byte("FLANNEL_NETWORK=10.5.0.0/16\n"), 0o644)
	if _, err := readSubnet(f); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-written file: %v, want not-exist (keep waiting)", err)
	}
	os.WriteFile(f, []byte("FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\n"), 0o644)
	p, err := readSubnet(f)
	if err != nil || p.String() != "10.5.52.1/24" || p.Masked().Addr().String() != "10.5.52.0" {
		t.Fatalf("got %v, %v", p, err)
	}
	os.WriteFile(f, []byte("FLANNEL_SUBNET=10.5.x.1/24\n"), 0o644)
	if _, err := readSubnet(f); err == nil || errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "FLANNEL_SUBNET") {
		t.Fatalf("bad subnet: %v", err)
	}
}

func TestParseAgentMetrics(t *testing.T) {
	// The shape of an agent's /metrics (Prometheus text format).
	in := `# HELP go_memstats_mallocs_total Total number of heap objects allocated, both live and gc-ed.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 123456
# HELP felt_packets_total Inner IP packets forwarded, by direction (out: TUN to peers, in: peers to TUN).
# TYPE felt_packets_total counter
felt_packets_total{direction="in"} 1.5e+06
felt_packets_total{direction="out"} 500000
felt_bytes_total{direction="in"} 9e+09
`
	c, err := parseAgentMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.mallocs != 123456 || c.packets != 2e6 {
		t.Fatalf("got %+v, want mallocs 123456 and packets 2e6 (in + out)", c)
	}
	if _, err := parseAgentMetrics(strings.NewReader("go_memstats_mallocs_total 5\n")); err == nil {
		t.Error("no packet counter: no error")
	}
	if _, err := parseAgentMetrics(strings.NewReader("go_memstats_mallocs_total x\nfelt_packets_total{} 1\n")); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad value: %v", err)
	}
}

// A paced run's sent rate comes from end.sum_sent, its received rate and
// loss from end.sum_received, as for the flood.
func TestParseIperfPaced(t *testing.T) {
	r, b := parseFile(t, "iperf3-udp64-paced.json")
	var v struct {
		End struct {
			SumSent struct{ Packets, Seconds float64 } `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	want := v.End.SumSent.Packets / v.End.SumSent.Seconds / 1e3
	if got := r.sentKpps(); math.Abs(got-want) > 1e-9 || got < 40 || got > 60 {
		t.Errorf("sent %g kpps, want %g (the file was paced at 50 kpps)", got, want)
	}
	rx, loss := r.udpRate()
	if rx <= 0 || rx > r.sentKpps() || loss != sumReceived(t, b)["lost_percent"] {
		t.Errorf("rx %g kpps, loss %g%%", rx, loss)
	}
	if (iperfResult{}).sentKpps() != 0 {
		t.Error("no sum_sent: want 0")
	}
}
