package etcdtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type binary struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
}

func startBinary(ctx context.Context, s *Server) (process, error) {
	logPath := filepath.Join(s.dir, "etcd.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open etcd log: %w", err)
	}
	cmd := exec.Command(BinaryPath,
		"--name", "felttest",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", s.clientURL,
		"--advertise-client-urls", s.clientURL,
		"--listen-peer-urls", s.peerURL,
		"--initial-advertise-peer-urls", s.peerURL,
		"--initial-cluster", "felttest="+s.peerURL,
		"--logger", "zap",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies (a timeout panic), take etcd with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("run %s: %w", BinaryPath, err)
	}
	b := &binary{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(b.done)
	}()
	if err := WaitHealthy(ctx, &http.Client{Timeout: time.Second}, s.clientURL, b.done); err != nil {
		_ = b.kill()
		return nil, fmt.Errorf("%w; log tail:\n%s", err, tail(logPath, 10))
	}
	return b, nil
}

func (b *binary) kill() error {
	select {
	case <-b.done:
		return nil
	default:
	}
	err := b.cmd.Process.Kill()
	<-b.done
	return err
}

// WaitHealthy polls url's /health with hc (which carries any TLS client
// configuration) until etcd has a leader and serves reads. It gives up when
// exited closes (the process is gone) or ctx ends.
func WaitHealthy(ctx context.Context, hc *http.Client, url string, exited <-chan struct{}) error {
	for {
		resp, err := hc.Get(url + "/health")
		if err == nil {
			var buf [256]byte
			n, _ := resp.Body.Read(buf[:])
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(buf[:n]), `"true"`) {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("etcd exited while starting on %s", url)
		case <-ctx.Done():
			return fmt.Errorf("etcd on %s not healthy: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
