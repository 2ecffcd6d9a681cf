package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// RootlessEnv is set to "1" in a program that ReexecRootless started.
const RootlessEnv = "FELT_NETNS_ROOTLESS"

// Rootless reports whether this process is not root, so labs need a user
// namespace (ReexecRootless).
func Rootless() bool { return os.Geteuid() != 0 }

// InRootless reports whether this process runs inside ReexecRootless.
func InRootless() bool { return os.Getenv(RootlessEnv) == "1" }

// ReexecRootless runs this program again with args (not including the
// program name) in new user, mount and network namespaces in which it is
// root, with stdio passed through, and returns its exit error once it ends.
// Call it from main or a test when Rootless() && !InRootless(); the program
// it starts sees InRootless() and can build labs as if it were root (NewLab
// and Cleanup first give it a private /run with /run/netns, as in
// the shell recipe `unshare -rmn --propagation private` followed by mounting a tmpfs on /run).
//
// It needs unprivileged user namespaces (kernel.unprivileged_userns_clone,
// user.max_user_namespaces). TUN devices also need /dev/net/tun to be
// readable and writable by the user (mode 0666).
func ReexecRootless(ctx context.Context, args []string) error {
	uid, gid := os.Getuid(), os.Getgid()
	// /proc/self/exe, not os.Executable: the binary's directory may not be
	// searchable by this user (go test builds into a 0700 directory).
	cmd := exec.CommandContext(ctx, "/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), RootlessEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("netns: rootless %s: %w", os.Args[0], err)
		}
		return fmt.Errorf("netns: cannot start %s in a user namespace (are unprivileged user namespaces allowed? "+
			"see sysctl user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns): %w", os.Args[0], err)
	}
	return nil
}

// rootlessMark exists on the private /run that PrepareRootless mounted.
const rootlessMark = "/run/felt-netns-rootless"

var rootlessOnce struct {
	sync.Once
	err error
}

// prepareRootless gives a ReexecRootless program a private /run with
// /run/netns, once: without it `ip netns add` would need the real /run.
func prepareRootless() error {
	if !InRootless() {
		return nil
	}
	rootlessOnce.Do(func() { rootlessOnce.err = PrepareRootless() })
	return rootlessOnce.err
}

// PrepareRootless makes every mount private (so nothing leaks out of this
// mount namespace), mounts a tmpfs on /run and creates /run/netns. NewLab and
// Cleanup call it themselves under ReexecRootless; call it directly only
// when using `ip netns` without them. Do not call it outside a private
// mount namespace.
func PrepareRootless() error {
	// A child of a prepared program shares its mounts: do not hide its
	// /run/netns under another tmpfs.
	if _, err := os.Stat(rootlessMark); err == nil {
		return nil
	}
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("netns: make mounts private: %w", err)
	}
	if err := unix.Mount("none", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("netns: mount tmpfs on /run: %w", err)
	}
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	if err := os.WriteFile(rootlessMark, nil, 0o644); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}
