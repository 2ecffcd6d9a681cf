package tun

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// isPerm reports whether err means "no CAP_NET_ADMIN in this namespace".
func isPerm(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// noCap is the common tail of every sentence Configure returns as skipped.
func noCap(cmd string) string {
	return "no CAP_NET_ADMIN; ask your admin to run: " + cmd
}
