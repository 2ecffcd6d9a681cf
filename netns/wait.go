package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WaitFile waits until path exists, as a process that writes a readiness
// file whole (write, then rename) signals it is ready: felt agent's and
// flanneld's subnet.env. It fails, with the tail of p's log, if p exits
// first or path has not appeared within, and with ctx's error if ctx ends.
func (p *Process) WaitFile(ctx context.Context, path string, within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("netns: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Done():
			return fmt.Errorf("%s in %s exited before writing %s (%v):\n%s", p.name(), p.Host.Name, path, p.Wait(), p.LogTail(15))
		case <-deadline.C:
			return fmt.Errorf("%s in %s wrote no %s within %v:\n%s", p.name(), p.Host.Name, path, within, p.LogTail(15))
		case <-tick.C:
		}
	}
}

// LogTail returns the last n lines of the process's log, each indented by
// two spaces, for error messages.
func (p *Process) LogTail(n int) string { return TailLines(p.Log(), n, "  ") }

// TailLines returns the last n lines of s, each prefixed with indent.
func TailLines(s string, n int, indent string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return indent + strings.Join(lines, "\n"+indent)
}

// name is the program p runs, without its directory.
func (p *Process) name() string { return filepath.Base(p.cmd.Path) }
