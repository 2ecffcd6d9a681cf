package agent

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.RenewMargin = 0 }, ""}, // default 60 min
		{func(c *Config) { c.RenewMargin = 1440 * time.Minute }, "--subnet-lease-renew-margin 1440"},
		{func(c *Config) { c.RenewMargin = 30 * time.Second }, "--subnet-lease-renew-margin 0"},
		{func(c *Config) { c.PublicIP = netip.MustParseAddr("fd00::1") }, "--public-ip fd00::1"},
		{func(c *Config) { c.HealthzPort = 70000 }, "--healthz-port 70000"},
		{func(c *Config) { c.TUNName = "a-very-long-tun-name" }, "--tun-name"},
	} {
		c := Config{}
		tc.mut(&c)
		c.setDefaults()
		err := c.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate() = %v, want error containing %q", err, tc.want)
		}
	}
}
