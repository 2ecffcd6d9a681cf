package tun

import (
	"fmt"
	"strings"
)

// checkName applies the kernel's rules for interface names (dev_valid_name)
// so that a bad name fails here with a clear message, not as EINVAL later.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("tun: device name is empty: give a name such as flannel0")
	case len(name) > 15:
		return fmt.Errorf("tun: device name %q is %d bytes: at most 15 are allowed", name, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("tun: device name %q is not allowed", name)
	case strings.ContainsAny(name, "/: \t\n%"):
		return fmt.Errorf("tun: device name %q contains '/', ':', '%%' or white space, which interface names cannot", name)
	}
	return nil
}

// checkCreate checks the arguments of the Create functions.
func checkCreate(name string, mtu int) error {
	if err := checkName(name); err != nil {
		return err
	}
	return checkMTU("mtu", mtu)
}

// checkMTU accepts 0 (keep what the link has) or a value the kernel takes.
func checkMTU(field string, mtu int) error {
	if mtu != 0 && (mtu < 68 || mtu > 65535) {
		return fmt.Errorf("tun: %s %d: must be 0 (keep the current MTU) or between 68 and 65535", field, mtu)
	}
	return nil
}
