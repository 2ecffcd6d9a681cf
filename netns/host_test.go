package netns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestStartStopLog(t *testing.T) {
	needRoot(t)
	l := newLab(t, LabConfig{Name: labName("s"), Hosts: 1, Underlay: underlay("s")})
	h := l.Hosts[0]

	// It shows where it runs, and traps SIGTERM and says so, which proves
	// Stop sends SIGTERM first.
	p, err := h.Start(testCtx(t), "sh", "-c", `ip -o addr show dev eth0; echo to-stderr >&2; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(p.Log(), "to-stderr") }, p.Log)
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	log := p.Log()
	for _, want := range []string{h.Addr.String() + "/24", "to-stderr", "got-term"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if err := p.Wait(); err != nil {
		t.Errorf("Wait after a clean exit: %v", err)
	}

	// One that ignores SIGTERM is killed, and Wait reports it.
	q, err := h.Start(testCtx(t), "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.1; done`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(q.Log(), "ready") }, q.Log)
	if err := q.Kill(); err != nil {
		t.Errorf("Kill: %v", err)
	}
	if err := q.Wait(); err == nil {
		t.Errorf("Wait after SIGKILL returned nil")
	}
	// A failing command's exit status comes back.
	f, err := h.Start(testCtx(t), "sh", "-c", "exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
}

func waitFor(t *testing.T, cond func() bool, log func() string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met; log:\n%s", log())
}

func TestDoRunsInHost(t *testing.T) {
	needRoot(t)
	l := newLab(t, LabConfig{Name: labName("d"), Hosts: 2, Underlay: underlay("d")})
	h := l.Hosts[0]
	var ln net.Listener
	err := h.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IP.String() != h.Addr.String() {
			return errors.New("eth0 in the host has " + addrsString(addrs) + ", want " + h.Addr.String())
		}
		// A socket made here lives in the host, also after Do returns.
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.Addr, 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := netlink.LinkByName(l.Bridge()); err != nil {
		t.Errorf("after Do, the caller no longer sees the bridge of its own namespace: %v", err)
	}
	if h.Do(func() error { return errors.New("boom") }) == nil {
		t.Errorf("Do dropped fn's error")
	}
	// The other host dials the listener made inside the first one.
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var got []byte
	err = l.Hosts[1].Do(func() error {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err = io.ReadAll(c)
		return err
	})
	if err != nil || string(got) != "hi" {
		t.Errorf("dial from %s to %s: %q, %v", l.Hosts[1].Name, ln.Addr(), got, err)
	}

	// DialContext makes its socket in the host: it reaches a listener on the
	// host's loopback, which no other namespace reaches.
	var lo net.Listener
	if err := h.Do(func() (err error) { lo, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		if c, err := lo.Accept(); err == nil {
			accepted <- c.RemoteAddr()
			c.Close()
		}
	}()
	c, err := h.DialContext(testCtx(t), "tcp4", lo.Addr().String())
	if err != nil {
		t.Fatalf("DialContext to %s's loopback %s: %v", h.Name, lo.Addr(), err)
	}
	defer c.Close()
	select {
	case from := <-accepted:
		if from.String() != c.LocalAddr().String() {
			t.Errorf("the listener in %s accepted %s, want the dialled connection from %s", h.Name, from, c.LocalAddr())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the listener in %s accepted nothing: DialContext connected elsewhere (to %s)", h.Name, c.RemoteAddr())
	}
}

func addrsString(a []netlink.Addr) string {
	var s []string
	for _, x := range a {
		s = append(s, x.IPNet.String())
	}
	return strings.Join(s, ",")
}

func TestAddContainer(t *testing.T) {
	needRoot(t)
	l := newLab(t, LabConfig{Name: labName("t"), Hosts: 1, Underlay: underlay("t")})
	h := l.Hosts[0]
	gw := netip.MustParseAddr("10.78.3.1")
	c1, err := h.AddContainer(testCtx(t), "c1", "cni0", mustPrefix("10.78.3.2/24"), gw)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := h.AddContainer(testCtx(t), "c2", "cni0", mustPrefix("10.78.3.3/24"), gw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c1.Name, l.cfg.Name) || c1.Addr.String() != "10.78.3.2" {
		t.Errorf("container = %+v", c1)
	}
	ping(t, c1, gw)      // the bridge in the host
	ping(t, c1, c2.Addr) // container to container across the bridge
	ping(t, h, c2.Addr)  // host to container
	ping(t, c2, h.Addr)  // out through the default route to the host's underlay address
	out, err := c1.Command(testCtx(t), "ip", "route", "show", "default").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "via 10.78.3.1") {
		t.Errorf("container default route: %v %s", err, out)
	}
}

func TestSysctl(t *testing.T) {
	needRoot(t)
	l := newLab(t, LabConfig{Name: labName("y"), Hosts: 1, Underlay: underlay("y")})
	h := l.Hosts[0]
	const key = "/proc/sys/net/ipv4/conf/lo/forwarding"
	before, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	want := "1"
	if strings.TrimSpace(string(before)) == "1" {
		want = "0"
	}
	if err := h.Sysctl("net.ipv4.conf.lo.forwarding", want); err != nil {
		t.Fatal(err)
	}
	out, err := h.Command(testCtx(t), "cat", key).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("inside %s: %s = %q, %v; want %s", h.Name, key, out, err, want)
	}
	if after, _ := os.ReadFile(key); string(after) != string(before) {
		t.Errorf("the current namespace's %s changed from %q to %q", key, before, after)
	}
	if err := h.Sysctl("kernel.hostname", "x"); err == nil || !strings.Contains(err.Error(), "kernel.hostname") {
		t.Errorf("Sysctl of a non-net key: %v", err)
	}
}

// TestThrowaway: fn runs in a namespace of its own, with only a loopback;
// a process it starts is in there too; the caller's namespace is untouched
// and fn's error comes back.
func TestThrowaway(t *testing.T) {
	needRoot(t)
	own, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	err = Throwaway(func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" {
			return fmt.Errorf("a throwaway namespace has %d links (first %s), want only lo", len(links), links[0].Attrs().Name)
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "mtu", "1400").CombinedOutput(); err != nil {
			return fmt.Errorf("ip link set lo mtu 1400: %v: %s", err, out)
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().MTU != 1400 {
			return fmt.Errorf("ip, run from fn, set lo's MTU elsewhere: fn sees %d", lo.Attrs().MTU)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lo, err := netlink.LinkByName("lo"); err != nil || lo.Attrs().MTU != own.Attrs().MTU {
		t.Errorf("after Throwaway the caller's lo: %v, %v; want MTU %d as before", lo, err, own.Attrs().MTU)
	}
	if Throwaway(func() error { return errors.New("boom") }) == nil {
		t.Errorf("Throwaway dropped fn's error")
	}
}

// TestWaitFile: WaitFile returns once the process has written the file, and
// fails with the tail of the log when the process exits without writing it.
func TestWaitFile(t *testing.T) {
	needRoot(t)
	l := newLab(t, LabConfig{Name: labName("w"), Hosts: 1, Underlay: underlay("w")})
	h := l.Hosts[0]
	ready := t.TempDir() + "/ready"

	p, err := h.Start(testCtx(t), "sh", "-c", `sleep 0.2; echo x > "$1.tmp" && mv "$1.tmp" "$1"; sleep 30`, "sh", ready)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitFile(testCtx(t), ready, time.Minute); err != nil {
		t.Errorf("WaitFile for a file the process writes: %v", err)
	}

	q, err := h.Start(testCtx(t), "sh", "-c", `echo first; echo last-words; exit 3`)
	if err != nil {
		t.Fatal(err)
	}
	err = q.WaitFile(testCtx(t), t.TempDir()+"/never", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited before writing") || !strings.Contains(err.Error(), "  last-words") {
		t.Errorf("WaitFile for a process that exits: %v, want an error with the log's tail", err)
	}
}

func TestTailLines(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "> b\n> c"},
		{"a\nb\nc", 5, "> a\n> b\n> c"},
		{"only", 1, "> only"},
	} {
		if got := TailLines(c.s, c.n, "> "); got != c.want {
			t.Errorf("TailLines(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
