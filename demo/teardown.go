package demo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// teardown removes everything, whatever state the build reached: agents
// and namespaces (Lab.Close), etcd, the links and namespaces a command cut
// short by Ctrl-C may have made without the lab recording them, files.
func (d *run) teardown() {
	if d.work == "" {
		return // nothing was built
	}
	d.p.step("remove the lab", func() (string, error) {
		var errs []error
		if d.lab != nil {
			errs = append(errs, d.lab.Close())
		}
		if d.etcd != nil {
			errs = append(errs, d.etcd.Close())
		}
		errs = append(errs, removeNames(d.cfg.Name, d.cfg.Hosts))
		errs = append(errs, os.RemoveAll(d.work))
		if d.cfg.StateDir != "" {
			if err := os.Remove(statePath(d.cfg.StateDir, d.cfg.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return "removed agents, containers, hosts, bridge and etcd", errors.Join(errs...)
	})
}

// removeNames deletes, by exact name, every link and namespace the demo's
// lab can have. Exact names, not a prefix (netns.Cleanup): a demo called
// "fdemo" must not remove one called "fdemo2".
func removeNames(name string, hosts int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	del := func(args ...string) {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "Cannot find device") && !strings.Contains(string(out), "No such file") {
			errs = append(errs, errors.New("ip "+strings.Join(args, " ")+": "+strings.TrimSpace(string(out))))
		}
	}
	del("link", "del", name+"br")
	for i := 0; i < hosts; i++ {
		h := name + "h" + strconv.Itoa(i)
		del("link", "del", name+"v"+strconv.Itoa(i))
		for c := 1; c <= containersPerHost; c++ {
			del("netns", "del", h+"-c"+strconv.Itoa(c))
		}
		del("netns", "del", h)
	}
	return errors.Join(errs...)
}
