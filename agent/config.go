package agent

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"time"

	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/lease/etcdstore"
	"github.com/feltnet/felt/tun"
)

// Config is what `felt agent` needs, parsed once at the edge (cmd/felt).
// Field names follow flanneld's flags.
type Config struct {
	Etcd        etcdstore.ClientOptions
	Ifaces      []string      // --iface (names or IPv4 addresses; first match wins)
	PublicIP    netip.Addr    // --public-ip; default: the interface's address
	PublicIPv6  netip.Addr    // --public-ipv6; default: the interface's IPv6 address (with EnableIPv6)
	SubnetFile  string        // --subnet-file
	RenewMargin time.Duration // --subnet-lease-renew-margin
	IPMasq      bool          // --ip-masq
	// ForwardRules is flanneld's --iptables-forward-rules (the CLI's default
	// is true; the zero Config leaves FORWARD alone).
	ForwardRules bool
	HealthzIP    string // --healthz-ip
	HealthzPort  int    // --healthz-port; 0 = off
	TUNName      string // --tun-name (felt's): the TUN device
	VtepMACFile  string // felt's: where the VtepMAC persists; default beside SubnetFile
	// Queues is felt's --queues: TUN queues and sockets, one loop pair
	// each (queues.go); 0 means DefaultQueues.
	Queues int

	// flanneld's drop-in flags (see boot.go, firewall.go, iface.go).
	IfaceRegex     []string      // --iface-regex: tried after Ifaces, in order
	IfaceCanReach  string        // --iface-can-reach: the interface `ip route get` picks for it
	Resync         time.Duration // --iptables-resync; default 5 s
	NoRandomFully  bool          // --ip-masq-fully-random-disable
	BlackholeRoute bool          // --ip-blackhole-route
}

// DefaultTUNName is felt's TUN device name.
const DefaultTUNName = "felt0"

func (c *Config) setDefaults() {
	if c.SubnetFile == "" {
		c.SubnetFile = lease.DefaultSubnetFile
	}
	if c.RenewMargin == 0 {
		c.RenewMargin = 60 * time.Minute
	}
	if c.TUNName == "" {
		c.TUNName = DefaultTUNName
	}
	if c.VtepMACFile == "" {
		c.VtepMACFile = filepath.Join(filepath.Dir(c.SubnetFile), VtepMACFile)
	}
	if c.Queues == 0 {
		c.Queues = DefaultQueues
	}
	if c.Resync == 0 {
		c.Resync = 5 * time.Second
	}
	if c.Etcd.Prefix == "" {
		c.Etcd.Prefix = lease.DefaultPrefix
	}
}

// Validate checks the flags that have rules of their own.
func (c *Config) Validate() error {
	if m := c.RenewMargin; m < time.Minute || m > 1439*time.Minute {
		return fmt.Errorf("--subnet-lease-renew-margin %d: must be between 1 and 1439 minutes", int(m/time.Minute))
	}
	if c.PublicIP.IsValid() && !c.PublicIP.Is4() {
		return fmt.Errorf("--public-ip %s: must be an IPv4 address", c.PublicIP)
	}
	if a := c.PublicIPv6; a.IsValid() && (!a.Is6() || a.Is4In6() || a.Zone() != "" || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified()) {
		return fmt.Errorf("--public-ipv6 %s: must be a unicast IPv6 address, not link-local, without a zone", a)
	}
	if c.HealthzPort < 0 || c.HealthzPort > 65535 {
		return fmt.Errorf("--healthz-port %d: must be 0 (off) or a port 1..65535", c.HealthzPort)
	}
	if c.Resync < 0 {
		return fmt.Errorf("--iptables-resync %d: must be at least 1 second", int(c.Resync/time.Second))
	}
	for _, re := range c.IfaceRegex {
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("--iface-regex %q: not a regular expression: %v", re, err)
		}
	}
	if c.IfaceCanReach != "" {
		if ip, err := netip.ParseAddr(c.IfaceCanReach); err != nil || !ip.Is4() {
			return fmt.Errorf("--iface-can-reach %q: must be an IPv4 address", c.IfaceCanReach)
		}
	}
	if c.Queues < 0 || c.Queues > tun.MaxQueues {
		return fmt.Errorf("--queues %d: must be between 1 and %d", c.Queues, tun.MaxQueues)
	}
	if n := len(c.TUNName); n == 0 || n > 15 {
		return fmt.Errorf("--tun-name %q: must be 1..15 characters", c.TUNName)
	}
	return nil
}
