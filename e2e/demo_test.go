package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoName is a `felt demo --name` unique to this test process and letter.
func demoName(letter string) string { return fmt.Sprintf("fdm%d%s", os.Getpid()%100000, letter) }

// demoUnderlay keeps each demo's underlay apart from other tests' (10.200-250).
func demoUnderlay(i int) string { return fmt.Sprintf("10.253.%d.0/24", (os.Getpid()%50)*4+i) }

// demoRun is a `felt demo` process whose output is collected line by line.
type demoRun struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	line chan string // every line, also kept in out
	done chan struct{}
	err  error
}

func startDemo(t *testing.T, cmd *exec.Cmd) *demoRun {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	d := &demoRun{cmd: cmd, line: make(chan string, 1000), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.line <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		d.err = cmd.Wait()
		pw.Close()
		<-scanned
		close(d.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	})
	return d
}

func (d *demoRun) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// waitLine waits for a line matching re, failing if the demo ends first.
func (d *demoRun) waitLine(t *testing.T, re string, within time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(within)
	for {
		select {
		case l := <-d.line:
			if rx.MatchString(l) {
				return l
			}
		case <-d.done:
			// Lines still buffered were printed before the exit.
			for len(d.line) > 0 {
				if l := <-d.line; rx.MatchString(l) {
					return l
				}
			}
			t.Fatalf("demo ended (%v) before printing a line like %q:\n%s", d.err, re, d.output())
		case <-timeout:
			t.Fatalf("no line like %q within %s:\n%s", re, within, d.output())
		}
	}
}

// wait waits for the demo to exit and returns its exit code.
func (d *demoRun) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(within):
		t.Fatalf("demo still running after %s:\n%s", within, d.output())
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	if d.err != nil {
		t.Fatalf("demo: %v", d.err)
	}
	return 0
}

// demoLeftovers lists namespaces, links (in this namespace) and processes
// whose names or command lines contain name.
func demoLeftovers(t *testing.T, name string) []string {
	t.Helper()
	var left []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name) {
			left = append(left, "netns "+e.Name())
		}
	}
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], name) {
			link, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			left = append(left, "link "+link)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), name) && !strings.Contains(string(b), "-test.") {
			left = append(left, "process "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

// noLeftovers waits briefly for the kernel to finish deleting, then fails
// with whatever is still there.
func noLeftovers(t *testing.T, name string) {
	t.Helper()
	var left []string
	for try := 0; try < 20; try++ {
		if left = demoLeftovers(t, name); len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("left behind by demo %s:\n  %s", name, strings.Join(left, "\n  "))
}

// checkDemoReport checks the report of a demo of hosts hosts: every cross-
// host pair ok in the matrix, and a packet path through felt0 and docker0.
func checkDemoReport(t *testing.T, out string, hosts int) {
	t.Helper()
	pairs := 2 * hosts * 2 * (hosts - 1)
	_, matrix, ok := strings.Cut(out, "ping (row → column)")
	if !ok {
		t.Fatalf("no ping matrix in:\n%s", out)
	}
	matrix, _, _ = strings.Cut(matrix, "one packet")
	if n, f := len(regexp.MustCompile(`\bok\b`).FindAllString(matrix, -1)), strings.Count(matrix, "FAIL"); n != pairs || f != 0 {
		t.Errorf("ping matrix has %d ok and %d FAIL, want %d ok:\n%s", n, f, pairs, matrix)
	}
	for _, want := range []string{
		fmt.Sprintf("all %d container pairs across hosts connected.", pairs),
		"arrived intact",
		": dev felt0",   // the sender's host routes the overlay to the TUN
		": dev docker0", // the receiver's host delivers on the bridge
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemo runs `felt demo` as `make demo` does (plus a unique name and
// underlay): every container pair connected, exit 0, nothing left behind.
func TestDemo(t *testing.T) {
	needRoot(t)
	for i, tt := range []struct {
		name  string
		hosts int
		args  []string
	}{
		{"default", 3, nil},
		{"vxlan-ipmasq", 2, []string{"--backend", "vxlan", "--hosts", "2", "--ip-masq"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := demoName(string(rune('a' + i)))
			args := append([]string{"demo", "--name", name, "--underlay", demoUnderlay(i), "--state-dir", t.TempDir()}, tt.args...)
			d := startDemo(t, exec.Command(felt(t), args...))
			if code := d.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("felt demo exited %d:\n%s", code, d.output())
			}
			out := d.output()
			checkDemoReport(t, out, tt.hosts)
			if tt.name == "vxlan-ipmasq" {
				// h0 is the lab's first host: .2 of the underlay.
				h0 := strings.Replace(demoUnderlay(i), ".0/24", ".2", 1)
				if !strings.Contains(out, "arrived from "+h0+", h0's underlay address: masqueraded") {
					t.Errorf("no masqueraded connection from h0's underlay address %s in:\n%s", h0, out)
				}
			}
			noLeftovers(t, name)
		})
	}
}

// TestDemoInterrupt sends SIGINT at two points of the build: the demo
// stops, says so, and leaves no namespace, link or process behind.
func TestDemoInterrupt(t *testing.T) {
	needRoot(t)
	for i, tt := range []struct{ name, after string }{
		{"after-hosts", `ok +created 3 hosts`},
		{"after-agents", `ok +started 3 agents`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := demoName(string(rune('c' + i)))
			d := startDemo(t, exec.Command(felt(t), "demo", "--name", name, "--underlay", demoUnderlay(2+i), "--state-dir", t.TempDir()))
			d.waitLine(t, tt.after, 30*time.Second)
			if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := d.wait(t, 30*time.Second); code == 0 {
				t.Errorf("an interrupted demo exited 0:\n%s", d.output())
			}
			if !strings.Contains(d.output(), "interrupted: removing the lab") {
				t.Errorf("the demo did not say it was interrupted:\n%s", d.output())
			}
			noLeftovers(t, name)
		})
	}
}

// TestDemoKeep keeps the lab, runs a command in a container with `felt demo
// shell`, and removes it all with `felt demo down`.
func TestDemoKeep(t *testing.T) {
	needRoot(t)
	name, state := demoName("e"), t.TempDir()
	d := startDemo(t, exec.Command(felt(t), "demo", "--keep", "--hosts", "2", "--name", name, "--underlay", demoUnderlay(0), "--state-dir", state))
	d.waitLine(t, `felt demo down`, 60*time.Second)
	// The report's table: "h1  <ns>  <underlay>  <subnet>  <mtu>  felt0  h1/c1 10.5.x.2, ...".
	m := regexp.MustCompile(`(?m)^h1 .* h1/c1 ([0-9.]+),`).FindStringSubmatch(d.output())
	if m == nil {
		t.Fatalf("no h1/c1 address in the report:\n%s", d.output())
	}
	flags := []string{"--name", name, "--state-dir", state}
	out, err := exec.Command(felt(t), append(append([]string{"demo", "shell"}, flags...), "h0/c1", "ping", "-c", "1", "-W", "2", m[1])...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 received") {
		t.Errorf("felt demo shell h0/c1 ping %s: %v\n%s", m[1], err, out)
	}
	out, err = exec.Command(felt(t), append(append([]string{"demo", "shell"}, flags...), "h7/c1", "true")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `no host or container "h7/c1"; it has: h0 h0/c1 h0/c2 h1 h1/c1 h1/c2`) {
		t.Errorf("felt demo shell h7/c1: %v, %s; want an error listing the targets", err, out)
	}
	if len(demoLeftovers(t, name)) == 0 {
		t.Fatal("the leftover check sees nothing of a running demo: it could not catch a leak")
	}
	out, err = exec.Command(felt(t), append([]string{"demo", "down"}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("felt demo down: %v\n%s", err, out)
	}
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Errorf("kept demo exited %d after felt demo down:\n%s", code, d.output())
	}
	noLeftovers(t, name)
	if _, err := os.Stat(filepath.Join(state, name+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left behind: %v", err)
	}
}

// TestDemoClosedOutput closes the demo's output midway, as `felt demo |
// head -3` does: the demo must still remove its lab.
func TestDemoClosedOutput(t *testing.T) {
	needRoot(t)
	name := demoName("h")
	cmd := exec.Command(felt(t), "demo", "--hosts", "2", "--name", name, "--underlay", demoUnderlay(1), "--state-dir", t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	// Close once the lab exists, so that a demo killed by the closed
	// output would leave it behind.
	for r := bufio.NewReader(out); ; {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("demo output ended before it created its hosts: %v", err)
		}
		if strings.Contains(l, "created 2 hosts") {
			break
		}
	}
	out.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() < 0 {
			t.Errorf("the demo died of a signal when its output closed: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo still running 60 s after its output closed")
	}
	noLeftovers(t, name)
}
