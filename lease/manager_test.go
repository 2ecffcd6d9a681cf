package lease_test

// The Manager's tests that need a Store run against etcd in lease/etcdstore.

import (
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/lease"
)

func TestManagerOptionsValidated(t *testing.T) {
	for _, c := range []struct {
		o    lease.ManagerOptions
		want string // "" means valid
	}{
		{lease.ManagerOptions{}, ""},
		{lease.ManagerOptions{RenewMargin: time.Minute}, ""},
		{lease.ManagerOptions{RenewMargin: 1439 * time.Minute}, ""},
		{lease.ManagerOptions{RenewMargin: 1440 * time.Minute}, "renew margin 24h0m0s"},
		{lease.ManagerOptions{RenewMargin: 30 * time.Second}, "renew margin 30s"},
		{lease.ManagerOptions{TTL: 10 * time.Second, RenewMargin: 5 * time.Second}, ""},
		{lease.ManagerOptions{TTL: 1500 * time.Millisecond, RenewMargin: time.Second}, "lease TTL 1.5s"},
		{lease.ManagerOptions{RetryInterval: -time.Second}, "retry interval -1s"},
	} {
		_, err := lease.NewManager(nil, c.o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("NewManager(%+v): %v, want ok", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("NewManager(%+v): %v, want an error containing %q", c.o, err, c.want)
		}
	}
}
