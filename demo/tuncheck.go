package demo

import (
	"errors"
	"fmt"
	"os"

	"github.com/feltnet/felt/netns"
)

const tunPath = "/dev/net/tun"

// checkTUN opens /dev/net/tun as the agents will, so that a user who cannot
// gets one clear sentence before anything is built, instead of three agents
// failing.
func checkTUN() error {
	f, err := os.OpenFile(tunPath, os.O_RDWR, 0)
	if err == nil {
		return f.Close()
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: load the tun module (as root: modprobe tun)", tunPath)
	case errors.Is(err, os.ErrPermission) && netns.InRootless():
		mode := "?"
		if fi, serr := os.Stat(tunPath); serr == nil {
			mode = fmt.Sprintf("%#o", fi.Mode().Perm())
		}
		return fmt.Errorf("rootless mode: %s is mode %s, so an unprivileged user cannot open a TUN device here "+
			"(a user namespace does not change that). Debian ships it as 0666: as root run `chmod 0666 %s`, "+
			"or run the demo as root (sudo felt demo)", tunPath, mode, tunPath)
	}
	return fmt.Errorf("open %s: %w (the agents need it: run as root)", tunPath, err)
}
