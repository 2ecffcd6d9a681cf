package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/feltnet/felt/netns"
)

// State is what a running demo leaves in Config.StateDir for `felt demo
// shell` and `felt demo down`.
type State struct {
	Name     string            `json:"name"`
	PID      int               `json:"pid"`      // the demo process, which holds etcd and the lab
	Rootless bool              `json:"rootless"` // the lab lives in PID's user and mount namespaces
	Targets  map[string]string `json:"targets"`  // "h0" and "h0/c1" → namespace
}

func statePath(dir, name string) string { return filepath.Join(dir, name+".json") }

func writeState(dir string, s State) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(dir, s.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return os.Rename(tmp, statePath(dir, s.Name))
}

// ReadState reads the state of the demo called name. A demo that is not
// running is an error that says so.
func ReadState(dir, name string) (State, error) {
	var s State
	b, err := os.ReadFile(statePath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("no demo %q is running (no %s): start one with `felt demo --keep`", name, statePath(dir, name))
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state file %s: %w", statePath(dir, name), err)
	}
	return s, nil
}

// Namespace returns the namespace of target: a host ("h0") or a container
// ("h0/c1"); the namespace's own name is accepted too.
func (s State) Namespace(target string) (string, error) {
	if ns, ok := s.Targets[target]; ok {
		return ns, nil
	}
	for _, ns := range s.Targets {
		if ns == target {
			return ns, nil
		}
	}
	var names []string
	for t := range s.Targets {
		names = append(names, t)
	}
	sort.Strings(names)
	return "", fmt.Errorf("demo %q has no host or container %q; it has: %s", s.Name, target, strings.Join(names, " "))
}

// alive reports whether the state's demo process still runs (and is a demo,
// not a recycled pid).
func (s State) alive() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/cmdline")
	return err == nil && strings.Contains(string(b), "demo")
}

// Down stops the demo called name: it asks the demo process to remove its
// lab (SIGTERM), waits for it, then removes whatever a crashed demo left
// (netns.Cleanup of the name; as root only, since a rootless demo's lab
// dies with its process) and the state file.
func Down(dir, name string, out io.Writer) error {
	s, err := ReadState(dir, name)
	stateErr := err
	if err == nil && s.alive() {
		fmt.Fprintf(out, "stopping the demo (pid %d) …\n", s.PID)
		if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop demo pid %d: %w", s.PID, err)
		}
		for i := 0; i < 300 && s.alive(); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if s.alive() {
			syscall.Kill(s.PID, syscall.SIGKILL)
		}
	}
	if !netns.Rootless() || netns.InRootless() {
		if err := netns.Cleanup(name); err != nil {
			return fmt.Errorf("remove what demo %q left: %w", name, err)
		}
	}
	if dir != "" {
		os.Remove(statePath(dir, name))
	}
	if stateErr != nil {
		fmt.Fprintf(out, "no running demo %q; removed any namespaces and links it left\n", name)
		return nil
	}
	fmt.Fprintf(out, "demo %q is down\n", name)
	return nil
}
