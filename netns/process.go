package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// StopGrace is how long Process.Stop waits after SIGTERM before SIGKILL.
const StopGrace = 5 * time.Second

// Process is a background process in a host, tracked by its lab: Lab.Close
// kills it if it still runs. Its stdout and stderr go to one log file.
type Process struct {
	Host *Host
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // Wait's result, set before done closes
}

// Start runs name in the host's namespace in the background, in its own
// process group. Cancelling ctx stops it as Stop does.
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Process, error) {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	l.seq++
	path := filepath.Join(l.logDir, fmt.Sprintf("%s-%s-%d.log", h.Name, filepath.Base(name), l.seq))
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("netns: log file for %s: %w", name, err)
	}
	defer f.Close() // the child has its own copy

	cmd := h.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own group, so that signals also reach what it spawns; killed if the
	// test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{Host: h, cmd: cmd, log: path, done: make(chan struct{})}
	cmd.Cancel = func() error { return p.signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netns: start %s in %s: %w", name, h.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Pid is the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Stop sends SIGTERM to the process group, and SIGKILL after StopGrace. It
// returns once the process has exited; exits by these signals are no error.
func (p *Process) Stop() error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(StopGrace):
		if err := p.signal(syscall.SIGKILL); err != nil {
			return err
		}
		<-p.done
	}
	return p.exitErr()
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Process) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return p.exitErr()
}

// Log returns what the process has written to stdout and stderr so far.
// Lab.Close deletes the log: read it before.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", p.log, err)
	}
	return string(b)
}

func (p *Process) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("netns: signal %v to process group %d: %w", sig, p.cmd.Process.Pid, err)
	}
	return nil
}

// exitErr hides the exit we caused ourselves.
func (p *Process) exitErr() error {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() &&
			(ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGKILL) {
			return nil
		}
	}
	return p.err
}
