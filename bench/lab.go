package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/feltnet/felt/bench/internal/rr"
	"github.com/feltnet/felt/netns"
)

// etcdPort is the embedded etcd's client port on host 0's underlay address.
const etcdPort = 2379

// underlayLab is two hosts joined by one veth (netns Pair), an embedded etcd
// (`felt etcd`) in host 0 that both hosts reach on the underlay, and the
// servers (iperf3 per scenario, request/response) in host 1.
type underlayLab struct {
	u      Underlay
	name   string // the lab's name, stem of its namespaces and devices
	lab    *netns.Lab
	client *netns.Host // runs iperf3 -c and ping
	server *netns.Host // runs iperf3 -s (per scenario: measure.go) and the request/response server
	dir    string      // etcd data, subnet files
	etcd   string      // client URL
	bin    string
	rr     *rr.Server // request/response server in the server host
	rr6    *rr.Server // its IPv6 twin, for the IPv6 scenarios (ipv6.go); nil without them
}

// The servers' ports in the server host, each its own: the request/response
// server's (IPv4; the IPv6 one is rrPort6) and iperf3's (not iperf3's
// default 5201, so that a stray iperf3 server cannot answer in its place).
const (
	rrPort    = 9470
	rrPort6   = rrPort + 1
	iperfPort = rrPort + 2
)

// probeVXLAN says whether the kernel can create a vxlan device (nil) or why
// not, by creating and deleting one in the client host.
func (l *underlayLab) probeVXLAN(ctx context.Context) error {
	const dev = "fbprobe0"
	if err := runIn(ctx, l.client, "ip", "link", "add", dev, "type", vxlanType, "id", "42", "dstport", "4789", "dev", l.client.Iface); err != nil {
		return err
	}
	return runIn(ctx, l.client, "ip", "link", "del", dev)
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
	l := &underlayLab{u: u, name: name, lab: lab, client: lab.Hosts[0], server: lab.Hosts[1], bin: c.FeltBin}
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
		if n, ok := agentNets[sc]; ok {
			// Written straight into etcd, not with felt config set, which
			// refuses backends felt lacks: the agents judge the config, so
			// that a scenario felt (or flanneld) cannot run fails alone.
			if err := retry(ctx, 20*time.Second, func() error { return l.putRawConfig(ctx, n.prefix, n.config) }); err != nil {
				return nil, err
			}
		}
	}
	if err := l.server.Do(func() (err error) {
		l.rr, err = rr.Listen(netip.AddrPortFrom(netip.IPv4Unspecified(), rrPort))
		return err
	}); err != nil {
		return nil, fmt.Errorf("%s lab: request/response server: %w", u, err)
	}
	if hasIPv6(c.Scenarios) {
		if err := l.ipv6Up(ctx); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// retry calls try until it succeeds or within has passed (etcd starting).
func retry(ctx context.Context, within time.Duration, try func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := try()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// putRawConfig stores a network config unchecked through etcd's JSON
// gateway (POST /v3/kv/put), from inside the client host.
func (l *underlayLab) putRawConfig(ctx context.Context, prefix, config string) error {
	tr := &http.Transport{DialContext: l.client.DialContext}
	defer tr.CloseIdleConnections()
	key := prefix + "/config"
	body, _ := json.Marshal(map[string]string{
		"key": base64.StdEncoding.EncodeToString([]byte(key)), "value": base64.StdEncoding.EncodeToString([]byte(config))})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.etcd+"/v3/kv/put", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("put %s on %s: %w", key, l.etcd, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("put %s on %s: HTTP %s: %s", key, l.etcd, resp.Status, msg)
	}
	return nil
}

func (l *underlayLab) close() error {
	var err error
	if l.rr != nil {
		err = l.rr.Close()
	}
	if l.rr6 != nil {
		err = errors.Join(err, l.rr6.Close())
	}
	err = errors.Join(err, l.lab.Close())
	// A wireguard-go killed with the lab leaves its socket, which is not in
	// any namespace.
	for i := range 2 {
		err = errors.Join(err, removeWGSocket(wgGoDev(l.name, i)))
	}
	if l.dir != "" {
		err = errors.Join(err, os.RemoveAll(l.dir))
	}
	return err
}
