package envus

import (
	"strings"
	"testing"
	"time"
)

func TestGet(t *testing.T) {
	const name = "FELT_ENVUS_TEST"
	def, max := 50*time.Microsecond, time.Millisecond
	for _, tc := range []struct {
		val  string // "unset": not set at all
		want time.Duration
		bad  bool
	}{
		{"unset", def, false},
		{"0", 0, false},
		{"20", 20 * time.Microsecond, false},
		{"1000", time.Millisecond, false},
		{"1001", def, true},
		{"-1", def, true},
		{"4611686018427387904", def, true}, // 2^62 µs: would overflow a Duration
		{"50us", def, true},
		{"", def, true},
	} {
		if tc.val != "unset" {
			t.Setenv(name, tc.val)
		}
		got, err := Get(name, def, max)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("%s=%q: %v, %v; want %v, error %v", name, tc.val, got, err, tc.want, tc.bad)
		}
		if err != nil && (!strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "0 to 1000")) {
			t.Errorf("%s=%q: error %q does not name the variable and the rule", name, tc.val, err)
		}
	}
}
