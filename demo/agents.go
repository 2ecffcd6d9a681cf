package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/netns"
)

// agentStartTimeout bounds the wait for an agent's subnet.env.
const agentStartTimeout = 20 * time.Second

// node is one demo host: its namespace, its agent and what the agent leased.
type node struct {
	short string // "h0": how the demo names it to the user
	host  *netns.Host
	dir   string // its --subnet-file's directory
	proc  *netns.Process
	env   lease.SubnetEnv // read from its subnet.env once the agent wrote it
	tun   string
	ctrs  []*container
	addr6 netip.Addr // its IPv6 underlay address, with Config.IPv6
}

func (n *node) subnetFile() string { return filepath.Join(n.dir, "subnet.env") }

// startAgent runs `felt agent` in the node's namespace, flanneld-style flags.
func (n *node) startAgent(ctx context.Context, c Config, etcdURL string) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	args := []string{"agent", "--etcd-endpoints", etcdURL, "--iface", n.host.Iface,
		"--subnet-file", n.subnetFile(), "--healthz-ip", "127.0.0.1", "--healthz-port", strconv.Itoa(HealthPort)}
	if c.IPMasq {
		args = append(args, "--ip-masq")
	}
	p, err := n.host.Start(ctx, c.FeltBin, args...)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// waitLease waits until the agent has written subnet.env, and reads it.
func (n *node) waitLease(ctx context.Context) error {
	if err := n.proc.WaitFile(ctx, n.subnetFile(), agentStartTimeout); err != nil {
		return fmt.Errorf("agent on %s: %w", n.short, err)
	}
	env, err := lease.ReadSubnetEnv(n.subnetFile())
	if err != nil {
		return err
	}
	n.env = env
	return nil
}

// agentStatus is the part of the agent's /status (agent.Status) the demo uses.
type agentStatus struct {
	Subnet   string `json:"subnet"`
	PublicIP string `json:"public_ip"`
	TUN      string `json:"tun"`
	MTU      int    `json:"mtu"`
	Peers    []struct {
		Subnet string `json:"subnet"`
		Addr   string `json:"addr"`
		MAC    string `json:"mac"`
		Path   string `json:"path"` // direct or tunnelled
	} `json:"peers"`
	Counters map[string]uint64 `json:"counters"`
}

// status reads the agent's /status on the node's loopback.
func (n *node) status(ctx context.Context) (agentStatus, error) {
	var st agentStatus
	tr := &http.Transport{DisableKeepAlives: true, DialContext: n.host.DialContext}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), HealthPort).String() + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return st, fmt.Errorf("status of the agent on %s: %w", n.short, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, fmt.Errorf("status of the agent on %s: %w", n.short, err)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("status of the agent on %s: %w", n.short, err)
	}
	return st, nil
}

// waitPeers waits until the node's agent knows want peers.
func (n *node) waitPeers(ctx context.Context, want int, within time.Duration) (agentStatus, error) {
	deadline := time.Now().Add(within)
	for {
		st, err := n.status(ctx)
		if err == nil && len(st.Peers) == want {
			return st, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("agent on %s has %d peers after %s, want %d", n.short, len(st.Peers), within, want)
			}
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
