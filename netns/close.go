package netns

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"time"
)

// Close kills the processes started with Host.Start (and anything else left
// running in the lab's namespaces), deletes the links it made in the current
// namespace and then its namespaces. Safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, links, nss := l.procs, l.links, l.namespaces
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.signal(syscall.SIGKILL))
	}
	for _, p := range procs {
		<-p.done
	}
	// Deleting one end of a veth deletes both, at once; a namespace's
	// links go only when the kernel gets to it, so delete links first.
	for i := len(links) - 1; i >= 0; i-- {
		errs = append(errs, ignoreMissing(run(ctx, "ip", "link", "del", links[i])))
	}
	for i := len(nss) - 1; i >= 0; i-- {
		errs = append(errs, removeNamespace(ctx, nss[i]))
	}
	errs = append(errs, os.RemoveAll(l.logDir))
	return errors.Join(errs...)
}

// removeNamespace kills what still runs in the namespace, then deletes it.
func removeNamespace(ctx context.Context, ns string) error {
	killAllIn(ctx, ns)
	return ignoreMissing(run(ctx, "ip", "netns", "del", ns))
}

func ignoreMissing(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if strings.Contains(s, "Cannot find device") || strings.Contains(s, "No such file or directory") {
		return nil
	}
	return err
}
