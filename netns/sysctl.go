package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sysctl sets a network sysctl such as "net.ipv4.ip_forward" inside the
// host's namespace (new namespaces start with forwarding off).
func (h *Host) Sysctl(key, value string) error {
	if !strings.HasPrefix(key, "net.") || strings.Contains(key, "..") || strings.Contains(key, "/") {
		return fmt.Errorf("netns: sysctl key %q: must be a per-namespace key starting with \"net.\"", key)
	}
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	// /proc/sys/net resolves against the opening thread's namespace.
	return h.Do(func() error {
		if err := os.WriteFile(path, []byte(value), 0); err != nil {
			return fmt.Errorf("netns: sysctl %s=%s in %s: %w", key, value, h.Name, err)
		}
		return nil
	})
}
