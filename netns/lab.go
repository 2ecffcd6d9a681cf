package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
)

var errClosed = errors.New("netns: lab is closed")

// Lab is a set of hosts in network namespaces and the links between them.
// Close removes all of it. Its methods are safe for concurrent use.
type Lab struct {
	// Hosts are the underlay hosts, in order (containers are not listed).
	// AddHost appends to it: do not read it while an AddHost runs.
	Hosts []*Host

	cfg    LabConfig
	logDir string

	mu         sync.Mutex
	next       int      // index of the next host
	namespaces []string // created, in order
	links      []string // created in the current namespace, in order
	procs      []*Process
	seq        int // log file numbering
	closed     bool
}

// NewLab builds the lab c describes. If a step fails it removes everything
// built so far and returns the error.
func NewLab(ctx context.Context, c LabConfig) (*Lab, error) {
	if err := prepareRootless(); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", c.Name+"-logs-")
	if err != nil {
		return nil, fmt.Errorf("netns: log directory: %w", err)
	}
	l := &Lab{cfg: c, logDir: logDir}
	if err := l.build(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) build(ctx context.Context) error {
	if l.cfg.Topology == Pair {
		return l.buildPair(ctx)
	}
	if err := l.addBridge(ctx); err != nil {
		return err
	}
	for i := 0; i < l.cfg.Hosts; i++ {
		if _, err := l.AddHost(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Bridge returns the name of the underlay bridge in the current namespace,
// or "" for a Pair lab.
func (l *Lab) Bridge() string {
	if l.cfg.Topology == Pair {
		return ""
	}
	return l.cfg.Name + "br"
}

// Gateway returns the current namespace's underlay address (Bridge labs).
func (l *Lab) Gateway() netip.Addr { return gatewayAddr(l.cfg.Underlay) }

// Config returns the lab's configuration with defaults filled in.
func (l *Lab) Config() LabConfig { return l.cfg }

func (l *Lab) addBridge(ctx context.Context) error {
	br, mtu := l.Bridge(), strconv.Itoa(l.cfg.MTU)
	// No iptables on bridged frames: a host firewall (Docker's FORWARD DROP
	// with br_netfilter) must not eat lab traffic.
	if err := l.addLink(ctx, br, "link", "add", br, "mtu", mtu, "type", "bridge", "nf_call_iptables", "0"); err != nil {
		return err
	}
	gw := netip.PrefixFrom(l.Gateway(), l.cfg.Underlay.Bits())
	if err := run(ctx, "ip", "addr", "add", gw.String(), "dev", br); err != nil {
		return err
	}
	return run(ctx, "ip", "link", "set", br, "up")
}

// addLink runs `ip args...`, which creates the link name in the current
// namespace, and records it for Close.
func (l *Lab) addLink(ctx context.Context, name string, args ...string) error {
	if len(name) > 15 {
		return fmt.Errorf("netns: link name %s is longer than 15 characters: use a shorter LabConfig.Name", name)
	}
	if err := run(ctx, "ip", args...); err != nil {
		return err
	}
	l.mu.Lock()
	l.links = append(l.links, name)
	l.mu.Unlock()
	return nil
}

// addNamespace creates the namespace name and records it for Close.
func (l *Lab) addNamespace(ctx context.Context, name string) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return errClosed
	}
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, name)
	l.mu.Unlock()
	// Loopback up, as on any real host.
	return run(ctx, "ip", "-n", name, "link", "set", "lo", "up")
}

// claimIndex reserves the next host index.
func (l *Lab) claimIndex() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errClosed
	}
	i := l.next
	l.next++
	return i, nil
}

func (l *Lab) addHostRecord(h *Host) {
	l.mu.Lock()
	l.Hosts = append(l.Hosts, h)
	l.mu.Unlock()
}
