package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/feltnet/felt/internal/tcpcheck"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
)

// longRun reports whether FELT_LONG=1 asks for the long variants.
func longRun() bool { return os.Getenv("FELT_LONG") == "1" }

func putConfig(t *testing.T, cli *clientv3.Client, cfg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, lease.DefaultPrefix+"/config", cfg); err != nil {
		t.Fatalf("put network config: %v", err)
	}
}

// writeLease writes a lease as another writer would (a flanneld, an
// operator): a vxlan lease for sn at public with an etcd lease of ttl.
func writeLease(t *testing.T, cli *clientv3.Client, sn string, public netip.Addr, ttl time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mac := net.HardwareAddr{0x02, 0xfe, 0, 0, public.As4()[2], public.As4()[3]}
	val, err := json.Marshal(lease.NewVXLANAttrs(public, 1, mac))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		t.Fatalf("grant lease for %s: %v", sn, err)
	}
	key := lease.SubnetKey(lease.DefaultPrefix, netip.MustParsePrefix(sn), netip.Prefix{})
	if _, err := cli.Put(ctx, key, string(val), clientv3.WithLease(g.ID)); err != nil {
		t.Fatalf("write lease %s: %v", key, err)
	}
	return key
}

// leaseKeys lists the keys under <prefix>/subnets, sorted.
func leaseKeys(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, lease.DefaultPrefix+"/"+lease.SubnetsDir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("list lease keys: %v", err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	sort.Strings(keys)
	return keys
}

// subnetOf returns the lease key for a host's subnet as /status reports it.
func keyOf(subnet string) string {
	return lease.SubnetKey(lease.DefaultPrefix, netip.MustParsePrefix(subnet), netip.Prefix{})
}

// waitPeerSubnet waits until h's agent lists a peer for subnet.
func (c *cluster) waitPeerSubnet(h *netns.Host, subnet string, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		for _, p := range c.status(h).Peers {
			if p.Subnet == subnet {
				return time.Since(start)
			}
		}
		if time.Since(start) > within {
			c.t.Fatalf("%s does not see lease %s after %v: peers %+v\nagent log tail:\n%s",
				h.Name, subnet, within, c.status(h).Peers, c.agents[h.Name].LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// partition refuses (TCP reset), in the test's namespace, every connection
// from the lab bridge to one of ports, as a stopped etcd would: the hosts
// lose etcd while the test itself still reaches it. heal (also run at cleanup) removes the rules.
func partition(t *testing.T, bridge string, ports []string) (heal func()) {
	t.Helper()
	rule := func(op string, port string) []string {
		return []string{op, "INPUT", "-i", bridge, "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"}
	}
	for _, p := range ports {
		if out, err := exec.Command("iptables", rule("-I", p)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v: %s", err, out)
		}
	}
	var healed atomic.Bool
	heal = func() {
		if healed.Swap(true) {
			return
		}
		for _, p := range ports {
			if out, err := exec.Command("iptables", rule("-D", p)...).CombinedOutput(); err != nil {
				t.Errorf("iptables: %v: %s", err, out)
			}
		}
	}
	t.Cleanup(heal)
	return heal
}

// clientPorts are the members' client ports, for partition.
func (ec *etcdCluster) clientPorts() []string {
	var ps []string
	for _, m := range ec.members {
		ps = append(ps, m.hostPort()[strings.LastIndexByte(m.hostPort(), ':')+1:])
	}
	return ps
}

// stream is a TCP connection from one host to another that carries
// pseudo-random bytes until stop is called, then compares what arrived with
// what was sent (count and SHA-256). It never calls t.Fatal off the test
// goroutine: wait reports.
type longStream struct {
	stop    chan struct{}
	result  chan error
	sentN   atomic.Int64
	receivd atomic.Int64
}

// startStream starts a stream from → to's dst and returns at once.
func startStream(t *testing.T, from, to *netns.Host, dst netip.Addr) *longStream {
	t.Helper()
	s := &longStream{stop: make(chan struct{}), result: make(chan error, 1)}
	ln, got := listenHash(t, to, dst, counter{&s.receivd})
	t.Cleanup(func() { ln.Close() })
	conn := dialFrom(t, from, ln.Addr().String())
	go func() {
		h := sha256.New()
		src := tcpcheck.Stream(7)
		buf := make([]byte, 64<<10)
		var err error
		for err == nil {
			select {
			case <-s.stop:
				conn.Close()
				var want [32]byte
				copy(want[:], h.Sum(nil))
				select {
				case r := <-got:
					s.result <- r.Check(s.sentN.Load(), want)
				case <-time.After(time.Minute):
					s.result <- fmt.Errorf("receiver did not finish within a minute of the sender closing")
				}
				return
			default:
			}
			src.Read(buf)
			conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			var n int
			n, err = conn.Write(buf)
			h.Write(buf[:n])
			s.sentN.Add(int64(n))
		}
		conn.Close()
		s.result <- fmt.Errorf("send after %d bytes: %w", s.sentN.Load(), err)
	}()
	return s
}

// finish stops sending and waits for the byte-for-byte verdict.
func (s *longStream) finish() error {
	close(s.stop)
	return <-s.result
}

type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }
