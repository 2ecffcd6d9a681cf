package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/feltnet/felt/netns"
)

// etcdPort is the embedded etcd's client port on host 0's underlay address.
const etcdPort = 2379

// overlay networks, one per felt backend, each under its own etcd prefix so
// that the two backends' leases never meet.
var feltNets = map[Scenario]struct{ prefix, config string }{
	FeltUDP:   {"/felt-bench/udp", `{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`},
	FeltVXLAN: {"/felt-bench/vxlan", `{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}`},
}

// underlayLab is two hosts joined by one veth (netns Pair), an embedded etcd
// (`felt etcd`) in host 0 that both hosts reach on the underlay, and an
// iperf3 server in host 1.
type underlayLab struct {
	u      Underlay
	lab    *netns.Lab
	client *netns.Host // runs iperf3 -c and ping
	server *netns.Host // runs iperf3 -s
	dir    string      // etcd data, subnet files
	etcd   string      // client URL
	bin    string
}

func newUnderlayLab(ctx context.Context, c *Config, u Underlay, stem string) (_ *underlayLab, err error) {
	name := stem + string(u[0])
	lab, err := netns.NewLab(ctx, netns.LabConfig{
		Name: name, Hosts: 2, Topology: netns.Pair, WireLike: u == Wire,
		Underlay: netip.MustParsePrefix("10.99.0.0/24"), // inside the lab's namespaces only
	})
	if err != nil {
		return nil, fmt.Errorf("%s lab: %w", u, err)
	}
	l := &underlayLab{u: u, lab: lab, client: lab.Hosts[0], server: lab.Hosts[1], bin: c.FeltBin}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.close())
		}
	}()
	if l.dir, err = os.MkdirTemp("", name+"-"); err != nil {
		return nil, fmt.Errorf("%s lab: %w", u, err)
	}
	h0 := lab.Hosts[0]
	l.etcd = "http://" + netip.AddrPortFrom(h0.Addr, etcdPort).String()
	if _, err := h0.Start(ctx, c.FeltBin, "etcd", "--data-dir", filepath.Join(l.dir, "etcd"),
		"--listen-client-urls", l.etcd, "--listen-peer-urls", "http://127.0.0.1:2380"); err != nil {
		return nil, err
	}
	for _, sc := range c.Scenarios {
		if n, ok := feltNets[sc]; ok {
			if err := l.putConfig(ctx, n.prefix, n.config); err != nil {
				return nil, err
			}
		}
	}
	if _, err := l.server.Start(ctx, "iperf3", "-s"); err != nil {
		return nil, err
	}
	return l, nil
}

// putConfig stores a network config with `felt config set`, retrying while
// etcd starts.
func (l *underlayLab) putConfig(ctx context.Context, prefix, config string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := l.client.Command(ctx, l.bin, "config", "set", "--etcd-endpoints", l.etcd,
			"--etcd-prefix", prefix, "--etcd-dial-timeout", "1s", config).CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("felt config set %s on %s: %w: %s", prefix, l.etcd, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *underlayLab) close() error {
	err := l.lab.Close()
	if l.dir != "" {
		err = errors.Join(err, os.RemoveAll(l.dir))
	}
	return err
}
