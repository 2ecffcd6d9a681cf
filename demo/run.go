package demo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/feltnet/felt/lease/etcdserver"
	"github.com/feltnet/felt/netns"
)

// Result is what a demo built and found. Run returns it also on failure,
// as far as it got.
type Result struct {
	Mode     string // "root" or "rootless (…)"
	Pings    []PingResult
	Transfer TransferResult
	Masq     *MasqResult // with Config.IPMasq
	// Transfer6 is the same transfer between the containers' IPv6
	// addresses, with Config.IPv6.
	Transfer6 *TransferResult
}

// run is one demo in progress: what has been built, for teardown.
type run struct {
	cfg   Config
	p     *progress
	res   Result
	work  string
	lab   *netns.Lab
	etcd  *etcdserver.Server
	nodes []*node
}

// Run builds the demo, checks it, prints the report and removes it all
// again (after ctx ends, with Config.Keep). It returns an error if a step
// failed, a pair of containers could not talk, or ctx ended before the
// checks were done; nothing it built is left behind in any case.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &run{cfg: c, p: newProgress(c.Out, c.Now)}
	d.res.Mode = mode()
	dr := ""
	if c.DirectRouting {
		dr = " (DirectRouting)"
	}
	fmt.Fprintf(c.Out, "felt demo: %d hosts, %s backend%s, mode %s\n", c.Hosts, c.Backend, dr, d.res.Mode)
	err = d.build(ctx)
	if err == nil {
		err = d.check(ctx)
	}
	switch {
	case err == nil && c.Keep:
		d.printKeep()
		<-ctx.Done() // a kept lab ends with Ctrl-C or `felt demo down`: no error
	case ctx.Err() != nil:
		fmt.Fprintln(c.Out, "interrupted: removing the lab")
		err = fmt.Errorf("interrupted; the lab is removed: %w", ctx.Err())
	}
	d.teardown()
	return &d.res, err
}

// mode says how this process got its privileges.
func mode() string {
	if !netns.InRootless() {
		return "root"
	}
	m := "rootless (user namespace"
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			m += ", uid " + f[1] + " outside"
		}
	}
	return m + ")"
}

func (d *run) build(ctx context.Context) error {
	c := d.cfg
	if c.Backend != "host-gw" { // host-gw programs routes only: no TUN
		if err := d.p.step("check "+tunPath, func() (string, error) {
			return tunPath + " can be opened: the agents can create their TUN devices", checkTUN()
		}); err != nil {
			return err
		}
	}
	if err := d.p.step("check for a running demo", func() (string, error) { return "", notRunning(c.Name) }); err != nil {
		return err
	}
	if netns.InRootless() {
		// The user namespace came with a fresh network namespace whose
		// loopback is down; etcd's clients here reach the gateway over it.
		if err := ip(ctx, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	var err error
	if d.work, err = os.MkdirTemp("", c.Name+"-"); err != nil {
		return err
	}
	if err := d.p.step("create hosts", func() (string, error) {
		d.lab, err = netns.NewLab(ctx, netns.LabConfig{Name: c.Name, Hosts: c.Hosts, Underlay: c.Underlay})
		if err != nil {
			return "", err
		}
		var names []string
		for i, h := range d.lab.Hosts {
			n := &node{short: "h" + strconv.Itoa(i), host: h, dir: filepath.Join(d.work, h.Name)}
			d.nodes = append(d.nodes, n)
			names = append(names, fmt.Sprintf("%s %s", n.short, h.Addr))
			// Hosts route for their containers, as Docker's hosts do.
			if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
				return "", err
			}
			if c.IPv6 {
				if err := n.addUnderlay6(ctx, c.Underlay6, i); err != nil {
					return "", err
				}
				names[len(names)-1] += " " + n.addr6.String()
			}
		}
		return fmt.Sprintf("created %d hosts (namespaces %sh*) on bridge %s %s, ip_forward on: %s",
			c.Hosts, c.Name, d.lab.Bridge(), netip.PrefixFrom(d.lab.Gateway(), c.Underlay.Bits()), strings.Join(names, ", ")), nil
	}); err != nil {
		return err
	}
	if err := d.writeState(); err != nil {
		return err
	}
	if err := d.p.step("start etcd", func() (string, error) {
		d.etcd, err = startEtcd(ctx, d.lab.Gateway(), d.work, c.Log)
		if err != nil {
			return "", err
		}
		return "etcd (embedded in this process) serves " + d.etcd.ClientURL(), nil
	}); err != nil {
		return err
	}
	if err := d.p.step("write network config", func() (string, error) {
		return "wrote /coreos.com/network/config " + c.netConfig(), putConfig(ctx, d.etcd.ClientURL(), c.netConfig())
	}); err != nil {
		return err
	}
	if err := d.p.step("start agents", func() (string, error) { return d.startAgents(ctx) }); err != nil {
		return err
	}
	if err := d.p.step("wait for peers", func() (string, error) { return d.waitPeers(ctx) }); err != nil {
		return err
	}
	if err := d.p.step("create containers", func() (string, error) {
		for _, n := range d.nodes {
			if err := n.buildContainers(ctx); err != nil {
				return "", fmt.Errorf("%s: %w", n.short, err)
			}
		}
		if err := d.writeState(); err != nil {
			return "", err
		}
		addrs := "address FLANNEL_SUBNET"
		if c.IPv6 {
			addrs = "addresses FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET"
		}
		return fmt.Sprintf("created %d containers: on each host %s (%s, mtu FLANNEL_MTU) with %d containers behind it",
			len(d.nodes)*containersPerHost, bridgeName, addrs, containersPerHost), nil
	}); err != nil {
		return err
	}
	return nil
}

// startAgents starts every host's agent, then waits for every lease.
func (d *run) startAgents(ctx context.Context) (string, error) {
	for _, n := range d.nodes {
		if err := n.startAgent(ctx, d.cfg, d.etcd.ClientURL()); err != nil {
			return "", err
		}
	}
	errs := make([]error, len(d.nodes))
	var wg sync.WaitGroup
	for i, n := range d.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.waitLease(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	var leases []string
	for _, n := range d.nodes {
		leases = append(leases, fmt.Sprintf("%s %s", n.short, n.env.Subnet))
	}
	masq := ""
	if d.cfg.IPMasq {
		masq = " --ip-masq"
	}
	return fmt.Sprintf("started %d agents (felt agent%s) and each wrote its subnet.env: %s", len(d.nodes), masq, strings.Join(leases, ", ")), nil
}

func (d *run) waitPeers(ctx context.Context) (string, error) {
	want := len(d.nodes) - 1
	if d.cfg.IPv6 {
		want *= 2 // /status lists a peer's IPv4 and IPv6 subnets apart
	}
	for _, n := range d.nodes {
		st, err := n.waitPeers(ctx, want, 10*time.Second)
		if err != nil {
			return "", err
		}
		n.tun = st.TUN
	}
	if d.cfg.IPv6 {
		return fmt.Sprintf("every agent knows its %d peers, each with an IPv4 and an IPv6 subnet", len(d.nodes)-1), nil
	}
	return fmt.Sprintf("every agent knows its %d peers", len(d.nodes)-1), nil
}

// check pings, transfers, checks masquerading and prints the report.
func (d *run) check(ctx context.Context) error {
	c := d.cfg
	var failed []error
	if err := d.p.step("ping", func() (string, error) {
		d.res.Pings = pingAll(ctx, d.nodes)
		for _, r := range d.res.Pings {
			if r.Err != nil {
				failed = append(failed, r.Err)
			}
		}
		what := "container pairs across hosts answer ping"
		if c.IPv6 {
			what = "pings across hosts answered (every container pair, IPv4 and IPv6)"
		}
		msg := fmt.Sprintf("%d of %d %s", len(d.res.Pings)-len(failed), len(d.res.Pings), what)
		if len(failed) > 0 {
			return "", fmt.Errorf("%s; first failure: %w", msg, failed[0])
		}
		return msg, nil
	}); err != nil && ctx.Err() != nil {
		return err
	}
	src, dst := d.nodes[0], d.nodes[1]
	if err := d.p.step("TCP transfer", func() (string, error) {
		d.res.Transfer = transfer(ctx, src.ctrs[0], dst.ctrs[0], c.Transfer, c.Now)
		return d.res.Transfer.summary()
	}); err != nil {
		failed = append(failed, err)
	}
	if c.IPv6 {
		if err := d.p.step("TCP transfer over IPv6", func() (string, error) {
			r := transfer6(ctx, src.ctrs[0], dst.ctrs[0], c.Transfer, c.Now)
			d.res.Transfer6 = &r
			return r.summary()
		}); err != nil {
			failed = append(failed, err)
		}
	}
	if c.IPMasq {
		if err := d.p.step("ip-masq", func() (string, error) {
			r := checkMasq(ctx, src.ctrs[0], src.host.Addr, d.lab.Gateway())
			d.res.Masq = &r
			if r.Err != nil {
				return "", r.Err
			}
			return fmt.Sprintf("%s (%s) → %s outside the overlay arrived from %s, %s's underlay address: masqueraded",
				r.From, r.FromAddr, r.Dst, r.ArrivedSrc, src.short), nil
		}); err != nil {
			failed = append(failed, err)
		}
	}
	printTable(c.Out, d.nodes, d.res.Pings)
	st, err := src.status(ctx)
	if err == nil {
		printPath(ctx, c.Out, c, src, dst, st)
	}
	fmt.Fprintln(c.Out)
	if len(failed) > 0 {
		return fmt.Errorf("%d checks failed: %w", len(failed), errors.Join(failed...))
	}
	if c.IPv6 {
		fmt.Fprintf(c.Out, "all %d container pairs across hosts connected over IPv4 and IPv6.\n", len(d.res.Pings)/2)
		return nil
	}
	fmt.Fprintf(c.Out, "all %d container pairs across hosts connected.\n", len(d.res.Pings))
	return nil
}

func (d *run) printKeep() {
	c := d.cfg
	w := c.Out
	fmt.Fprintf(w, "\nthe lab stays up while this command runs (it holds etcd). From another terminal:\n")
	fmt.Fprintf(w, "  felt demo shell h0/c1      a shell in a container (ping %s)\n", d.nodes[1].ctrs[0].addr)
	fmt.Fprintf(w, "  felt demo shell h0         a shell on a host (felt status --healthz-port %d; ip route)\n", HealthPort)
	fmt.Fprintf(w, "  felt demo down             remove it all (or press Ctrl-C here)\n")
	if c.Name != DefaultName {
		fmt.Fprintf(w, "  (add --name %s to each)\n", c.Name)
	}
}

// writeState records the running demo for `felt demo shell` and `down`.
func (d *run) writeState() error {
	s := State{Name: d.cfg.Name, PID: os.Getpid(), Rootless: netns.InRootless(), Targets: map[string]string{}}
	for _, n := range d.nodes {
		s.Targets[n.short] = n.host.Name
		for _, c := range n.ctrs {
			s.Targets[c.short] = c.ns.Name
		}
	}
	return writeState(d.cfg.StateDir, s)
}

// notRunning fails if a lab called name is up (another demo, or one that
// crashed): two would fight over the names.
func notRunning(name string) error {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"h") {
			return fmt.Errorf("a demo named %s is already up (namespace %s): remove it with `felt demo down`", name, e.Name())
		}
	}
	return nil
}
