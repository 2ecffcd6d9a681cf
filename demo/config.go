package demo

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultHosts   = 3
	DefaultBackend = "udp"
	DefaultName    = "fdemo"
	// DefaultTransfer is the size of the checked TCP transfer.
	DefaultTransfer = 16 << 20
	// HealthPort is every agent's --healthz-port (one per host namespace).
	HealthPort = 8471
)

// Default networks: the underlay sits outside the 10.200-10.250 ranges the
// tests use; the overlay is the flannel tutorials' 10.5.0.0/16.
var (
	DefaultUnderlay = netip.MustParsePrefix("10.252.0.0/24")
	DefaultNetwork  = netip.MustParsePrefix("10.5.0.0/16")
	// With IPv6: the hosts' IPv6 underlay (host i gets ::i+1 on its
	// interface) and the IPv6 overlay (flannel's IPv6Network).
	DefaultUnderlay6   = netip.MustParsePrefix("fdee:252::/64")
	DefaultIPv6Network = netip.MustParsePrefix("fd00:5::/48")
)

// Config describes one demo. Zero fields take the defaults above.
type Config struct {
	Hosts   int    // hosts (each with an agent and two containers); 2..20
	Backend string // "udp", "vxlan", "wireguard" or "host-gw"
	// DirectRouting sets vxlan's DirectRouting: the hosts share one L2, so
	// every peer is reached by a kernel route instead of felt's TUN.
	DirectRouting bool
	IPMasq        bool         // run the agents with --ip-masq and check masquerading
	Keep          bool         // after the checks, keep the lab until ctx ends
	Name          string       // lab name: prefix of every namespace and link (netns.LabConfig.Name)
	Underlay      netip.Prefix // the hosts' network
	Network       netip.Prefix // the overlay (flannel's Network)
	Transfer      int64        // bytes of the checked TCP transfer

	// IPv6 makes the lab dual-stack: EnableIPv6 with IPv6Network, an IPv6
	// underlay address on every host, containers with an address of each
	// family, pings and a TCP transfer over both (udp and vxlan only).
	IPv6        bool
	Underlay6   netip.Prefix // the hosts' IPv6 network; default DefaultUnderlay6
	IPv6Network netip.Prefix // default DefaultIPv6Network

	// FeltBin is the felt binary the agents run; default os.Executable().
	FeltBin string
	// StateDir holds <Name>.json while the demo runs, for `felt demo down`
	// and `felt demo shell`; "" keeps no state file.
	StateDir string

	Out io.Writer        // progress and report; default os.Stdout
	Log *zap.Logger      // default zap.NewNop()
	Now func() time.Time // clock for step timings; default time.Now
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{1,8}$`)

// Validate reports the first field that breaks its rule, naming it.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns c with defaults filled in, or an error naming the
// first field that breaks its rule.
func (c Config) withDefaults() (Config, error) {
	if c.Hosts == 0 {
		c.Hosts = DefaultHosts
	}
	if c.Backend == "" {
		c.Backend = DefaultBackend
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if !c.Underlay.IsValid() {
		c.Underlay = DefaultUnderlay
	}
	if !c.Network.IsValid() {
		c.Network = DefaultNetwork
	}
	if c.Transfer == 0 {
		c.Transfer = DefaultTransfer
	}
	if c.IPv6 && !c.Underlay6.IsValid() {
		c.Underlay6 = DefaultUnderlay6
	}
	if c.IPv6 && !c.IPv6Network.IsValid() {
		c.IPv6Network = DefaultIPv6Network
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FeltBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("demo: find the felt binary for the agents: %w", err)
		}
		c.FeltBin = exe
	}
	switch {
	case c.Hosts < 2 || c.Hosts > 20:
		return c, fmt.Errorf("demo: hosts %d: must be between 2 and 20 (containers talk across hosts)", c.Hosts)
	case c.Backend != "udp" && c.Backend != "vxlan" && c.Backend != "wireguard" && c.Backend != "host-gw":
		return c, fmt.Errorf("demo: backend %q: must be udp, vxlan, wireguard or host-gw", c.Backend)
	case c.DirectRouting && c.Backend != "vxlan":
		return c, fmt.Errorf("demo: direct-routing with backend %q: DirectRouting is a vxlan option (use --backend vxlan)", c.Backend)
	case !nameRE.MatchString(c.Name):
		return c, fmt.Errorf("demo: name %q: must be 2 to 9 lower-case letters and digits, starting with a letter", c.Name)
	case !c.Network.Addr().Is4() || c.Network.Bits() > 18 || c.Network != c.Network.Masked():
		return c, fmt.Errorf("demo: network %s: must be an IPv4 network of /18 or larger without host bits, e.g. 10.5.0.0/16", c.Network)
	case c.Underlay.Overlaps(c.Network):
		return c, fmt.Errorf("demo: underlay %s: must not overlap the overlay network %s", c.Underlay, c.Network)
	case c.IPv6 && c.Backend != "udp" && c.Backend != "vxlan":
		return c, fmt.Errorf("demo: ipv6 with backend %q: felt carries IPv6 with udp and vxlan only", c.Backend)
	case c.IPv6 && c.DirectRouting:
		return c, fmt.Errorf("demo: ipv6 with direct-routing: DirectRouting routes IPv4 only; drop one of them")
	case c.IPv6 && (!c.Underlay6.Addr().Is6() || c.Underlay6.Addr().Is4In6() || c.Underlay6.Bits() > 120 || c.Underlay6 != c.Underlay6.Masked()):
		return c, fmt.Errorf("demo: underlay6 %s: must be an IPv6 network of /120 or larger without host bits, e.g. %s", c.Underlay6, DefaultUnderlay6)
	case c.IPv6 && (!c.IPv6Network.Addr().Is6() || c.IPv6Network.Addr().Is4In6() || c.IPv6Network.Bits() > 56 || c.IPv6Network != c.IPv6Network.Masked()):
		return c, fmt.Errorf("demo: ipv6-network %s: must be an IPv6 network of /56 or larger without host bits, e.g. %s", c.IPv6Network, DefaultIPv6Network)
	case c.IPv6 && c.Underlay6.Overlaps(c.IPv6Network):
		return c, fmt.Errorf("demo: underlay6 %s: must not overlap the IPv6 overlay network %s", c.Underlay6, c.IPv6Network)
	case c.Transfer < 0:
		return c, fmt.Errorf("demo: transfer %d bytes: must not be negative", c.Transfer)
	}
	return c, nil
}

// netConfig is the flannel network config the demo writes to etcd.
func (c Config) netConfig() string {
	if c.IPv6 {
		return fmt.Sprintf(`{"Network":%q,"EnableIPv6":true,"IPv6Network":%q,"Backend":{"Type":%q}}`,
			c.Network.String(), c.IPv6Network.String(), c.Backend)
	}
	if c.DirectRouting {
		return fmt.Sprintf(`{"Network":%q,"Backend":{"Type":%q,"DirectRouting":true}}`, c.Network.String(), c.Backend)
	}
	return fmt.Sprintf(`{"Network":%q,"Backend":{"Type":%q}}`, c.Network.String(), c.Backend)
}
