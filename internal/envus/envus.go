// Package envus reads a duration given in whole microseconds from an
// environment variable: the packet path's tuning knobs (FELT_TUN_MODERATE,
// FELT_LINGER), which are measured settings, not flags of flanneld's.
package envus

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Get returns the variable name's value, whole microseconds from 0 to max,
// or def if it is unset. A value outside that gives def and an error naming
// the variable, the value and the rule.
func Get(name string, def, max time.Duration) (time.Duration, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def, nil
	}
	// Checked before it is multiplied: a huge count would overflow a
	// Duration into a small or negative one.
	us, err := strconv.Atoi(v)
	if err == nil && us >= 0 && us <= int(max/time.Microsecond) {
		return time.Duration(us) * time.Microsecond, nil
	}
	return def, fmt.Errorf("%s=%q: want whole microseconds from 0 to %d; using %d",
		name, v, max/time.Microsecond, def/time.Microsecond)
}
