package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// Cleanup removes what labs whose Name starts with prefix left behind (after
// a crash, or for `felt demo down`): processes in their namespaces, their
// links in the current namespace, and the namespaces. The prefix should end
// a lab name's stem, e.g. "ft12345", since "ft1" also matches "ft12".
func Cleanup(prefix string) error {
	if err := prepareRootless(); err != nil {
		return err
	}
	if len(prefix) < 2 {
		return fmt.Errorf("netns: Cleanup prefix %q: must be at least 2 characters, to not remove others' namespaces", prefix)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	links, err := netlink.LinkList()
	if err != nil {
		errs = append(errs, fmt.Errorf("netns: list links: %w", err))
	}
	for _, link := range links {
		if name := link.Attrs().Name; strings.HasPrefix(name, prefix) {
			errs = append(errs, ignoreMissing(run(ctx, "ip", "link", "del", name)))
		}
	}
	nss, err := namespaces()
	errs = append(errs, err)
	for _, ns := range nss {
		if strings.HasPrefix(ns, prefix) {
			errs = append(errs, removeNamespace(ctx, ns))
		}
	}
	return errors.Join(errs...)
}

// namespaces lists the named network namespaces (`ip netns list`).
func namespaces() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: list namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// killAllIn sends SIGKILL to every process in the namespace ns, and waits
// (briefly) until they are gone, so that deleting ns frees it at once.
func killAllIn(ctx context.Context, ns string) {
	for try := 0; try < 50; try++ {
		out, err := output(ctx, "ip", "netns", "pids", ns)
		if err != nil {
			return
		}
		pids := strings.Fields(out)
		if len(pids) == 0 {
			return
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
