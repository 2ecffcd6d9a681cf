package main

import (
	"strings"
	"testing"
)

// TestDemoUsage: bad demo flags are usage errors (exit 2) naming the flag's
// value and rule, found before anything is built or re-executed.
func TestDemoUsage(t *testing.T) {
	state := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"demo", "--backend", "ipip"}, 2, `backend "ipip": must be udp, vxlan, wireguard or host-gw`},
		{[]string{"demo", "--direct-routing"}, 2, `direct-routing with backend "udp": DirectRouting is a vxlan option`},
		{[]string{"demo", "--hosts", "1"}, 2, "hosts 1: must be between 2 and 20"},
		{[]string{"demo", "--underlay", "banana"}, 2, `--underlay "banana": not a CIDR prefix`},
		{[]string{"demo", "--transfer-mib", "0"}, 2, "--transfer-mib 0: must be between 1 and 4096"},
		{[]string{"demo", "extra"}, 2, `unexpected arguments ["extra"]`},
		{[]string{"demo", "shell", "--state-dir", state}, 2, "want a host or container, e.g. h0 or h0/c1"},
		{[]string{"demo", "shell", "--state-dir", state, "h0/c1"}, 1, `no demo "fdemo" is running`},
	} {
		r := felt(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("felt %v: exit %d, stderr %q; want exit %d and %q", tt.args, r.code, r.stderr, tt.code, tt.msg)
		}
	}
}
