package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/feltnet/felt/internal/tcpcheck"
)

// pingTries is how often a pair is pinged before it counts as failed: the
// first packet of a pair may wait for ARP on both bridges.
const pingTries = 3

// PingResult is one container pinging another across hosts.
type PingResult struct {
	From, To string // "h0/c1"
	IPv6     bool   // to To's IPv6 address (a dual-stack demo pings both)
	Err      error
}

// pingAll pings every container from every container on another host, one
// goroutine per source container.
func pingAll(ctx context.Context, nodes []*node) []PingResult {
	var srcs []*container
	for _, n := range nodes {
		srcs = append(srcs, n.ctrs...)
	}
	results := make([][]PingResult, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range nodes {
				if strings.HasPrefix(src.short, n.short+"/") {
					continue
				}
				for _, dst := range n.ctrs {
					results[i] = append(results[i], PingResult{From: src.short, To: dst.short, Err: ping(ctx, src, dst.addr)})
					if dst.addr6.IsValid() {
						results[i] = append(results[i], PingResult{From: src.short, To: dst.short, IPv6: true, Err: ping(ctx, src, dst.addr6)})
					}
				}
			}
		}()
	}
	wg.Wait()
	var out []PingResult
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

func ping(ctx context.Context, from *container, to netip.Addr) error {
	var err error
	for try := 0; try < pingTries; try++ {
		var out []byte
		out, err = from.ns.Command(ctx, "ping", "-n", "-c", "1", "-W", "2", to.String()).CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = fmt.Errorf("ping %s from %s: %w: %s", to, from.short, err, lastLine(string(out)))
	}
	return err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TransferResult is the checked TCP transfer between two containers.
type TransferResult struct {
	From, To   string
	Bytes      int64
	SHA256     [32]byte // of what was sent; what arrived matched it
	Took       time.Duration
	Err        error
	Dst        netip.AddrPort // the listener in To
	FromSource netip.Addr     // the source To saw: From's own address
}

// summary is the check's line for r, or r.Err when the transfer failed.
func (r TransferResult) summary() (string, error) {
	if r.Err != nil {
		return "", r.Err
	}
	mbps := float64(r.Bytes) * 8 / 1e6 / r.Took.Seconds()
	return fmt.Sprintf("TCP %s → %s (%s): %d MiB arrived intact (sha256 %x…), %.0f Mbit/s",
		r.From, r.To, r.Dst, r.Bytes>>20, r.SHA256[:6], mbps), nil
}

// transfer sends size pseudo-random bytes over TCP from one container to a
// listener in another, and compares the SHA-256 of both sides.
func transfer(ctx context.Context, from, to *container, size int64, now func() time.Time) TransferResult {
	return transferTo(ctx, from, to, to.addr, size, now)
}

// transfer6 is transfer to the container's IPv6 address.
func transfer6(ctx context.Context, from, to *container, size int64, now func() time.Time) TransferResult {
	return transferTo(ctx, from, to, to.addr6, size, now)
}

func transferTo(ctx context.Context, from, to *container, dst netip.Addr, size int64, now func() time.Time) TransferResult {
	r := TransferResult{From: from.short, To: to.short, Bytes: size}
	var ln net.Listener
	if err := to.ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		r.Err = fmt.Errorf("listen in %s: %w", to.short, err)
		return r
	}
	defer ln.Close()
	r.Dst = ln.Addr().(*net.TCPAddr).AddrPort()
	recv := tcpcheck.Receive(ln, io.Discard, time.Minute)
	t0 := now()
	conn, err := from.dial(ctx, r.Dst)
	if err != nil {
		r.Err = fmt.Errorf("connect from %s to %s: %w", from.short, r.Dst, err)
		return r
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(time.Minute))
	sent, sum, err := tcpcheck.Send(conn, uint64(size), size)
	conn.Close()
	r.SHA256 = sum
	if err != nil {
		r.Err = fmt.Errorf("send from %s after %d bytes: %w", from.short, sent, err)
		return r
	}
	select {
	case g := <-recv:
		r.Took = now().Sub(t0)
		r.FromSource = g.From
		if err := g.Check(size, sum); err != nil {
			r.Err = fmt.Errorf("%s → %s: %w", from.short, to.short, err)
		} else if g.From != from.addr && g.From != from.addr6 {
			// Inside the overlay flanneld's masq rules RETURN: no NAT.
			r.Err = fmt.Errorf("%s saw the connection come from %s, want %s's own address (no NAT inside the overlay)", to.short, g.From, from.short)
		}
	case <-ctx.Done():
		r.Err = ctx.Err()
	}
	return r
}

// MasqResult is a container reaching an address outside the overlay.
type MasqResult struct {
	From       string     // "h0/c1"
	FromAddr   netip.Addr // the container's overlay address
	Dst        netip.AddrPort
	ArrivedSrc netip.Addr // the source the destination saw
	Want       netip.Addr // the host's underlay address (masqueraded)
	Err        error
}

// checkMasq connects from a container to a listener on the lab gateway (in
// this process's namespace, outside the overlay). With --ip-masq the agent's
// FLANNEL-POSTRTG rules rewrite the source to the host's underlay address;
// without them the gateway could not even answer, having no route back.
func checkMasq(ctx context.Context, from *container, host netip.Addr, gw netip.Addr) MasqResult {
	r := MasqResult{From: from.short, FromAddr: from.addr, Want: host}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(gw, 0).String())
	if err != nil {
		r.Err = fmt.Errorf("listen on the gateway %s: %w", gw, err)
		return r
	}
	defer ln.Close()
	r.Dst = ln.Addr().(*net.TCPAddr).AddrPort()
	accepted := make(chan netip.Addr, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
		conn.Close()
	}()
	conn, err := from.dial(ctx, r.Dst)
	if err != nil {
		r.Err = fmt.Errorf("connect from %s to %s (outside the overlay): %w", from.short, r.Dst, err)
		return r
	}
	conn.Close()
	select {
	case src, ok := <-accepted:
		if !ok {
			r.Err = fmt.Errorf("the gateway listener failed")
			return r
		}
		r.ArrivedSrc = src
		if src != host {
			r.Err = fmt.Errorf("%s → %s arrived from %s, want the host's underlay address %s (masqueraded)", from.short, r.Dst, src, host)
		}
	case <-time.After(5 * time.Second):
		r.Err = fmt.Errorf("%s → %s: connected but never accepted", from.short, r.Dst)
	}
	return r
}

// dial opens a TCP connection to dst from the container's namespace.
func (c *container) dial(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.ns.DialContext(ctx, "tcp", dst.String())
}
