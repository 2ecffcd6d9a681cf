package bench

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// Scenario is one data path between the two hosts. A felt scenario run with
// extra agent flags (Config.FeltFlags) is named base[flags], felt-udp[--x 1]
// say, so that every variant stays a scenario of its own in the report.
type Scenario string

// The named scenarios; scenarioTable says what each is.
const (
	Bare        Scenario = "bare"         // underlay addresses directly: the ceiling
	KernelVXLAN Scenario = "kernel-vxlan" // flannel.1 as flanneld sets it up: the yardstick
	FeltUDP     Scenario = "felt-udp"
	FeltVXLAN   Scenario = "felt-vxlan"
	// FeltWireGuard is felt's wireguard backend (wireguard-go's device on
	// felt's TUN); WireGuardGo is Debian's wireguard-go binary configured
	// with wg, the same device as a separate program.
	FeltWireGuard   Scenario = "felt-wireguard"
	WireGuardGo     Scenario = "wireguard-go"
	FeltHostGW      Scenario = "felt-host-gw"
	FeltVXLANDirect Scenario = "felt-vxlan-direct"
	// The IPv6 scenarios run over the lab's IPv6 underlay addresses
	// (ipv6.go) and are measured between the hosts' IPv6 overlay
	// addresses: kernel-vxlan6 is flanneld's flannel-v6.1, felt-vxlan6
	// felt's vxlan with a dual-stack config.
	KernelVXLAN6 Scenario = "kernel-vxlan6"
	FeltVXLAN6   Scenario = "felt-vxlan6"
	// The flanneld scenarios run Config.Flanneld with flanneld's flags on the
	// same etcd and hosts as felt's.
	FlanneldUDP    Scenario = "flanneld-udp"
	FlanneldVXLAN  Scenario = "flanneld-vxlan" // needs the kernel's vxlan
	FlanneldHostGW Scenario = "flanneld-host-gw"
)

// scenarioKind is how a scenario's path is brought up.
type scenarioKind int

const (
	kindBare        scenarioKind = iota // nothing: the underlay addresses
	kindKernelVXLAN                     // kernelVXLAN.up
	kindWireGuardGo                     // wireguardGoUp
	kindFelt                            // felt agent, one per host
	kindFlanneld                        // Config.Flanneld, one per host
)

// scenarioDef is one row of scenarioTable.
type scenarioDef struct {
	name Scenario
	kind scenarioKind
	// inAll puts a felt or fixed scenario into the default set (`all`); the
	// flanneld ones join it when Config.Flanneld is set.
	inAll bool
	// config is the network config JSON the agents (felt or flanneld kinds)
	// find in etcd under /felt-bench/<name>; its Network must not overlap
	// another scenario's (TestScenarioTable).
	config string
	// flags are extra agent arguments, space-separated.
	flags string
	// vs are the scenarios this one's medians are also divided by
	// (ScenarioResult.RatioTo), shown as pairs in the table.
	vs []Scenario
}

// scenarioTable is every scenario, in report order. A felt scenario for
// another backend mode is one row: name, kindFelt, whether it is in `all`,
// the network config and extra agent flags. felt-host-gw and
// felt-vxlan-direct are kernel routes between the bench's two hosts (one
// segment), measured on request (--scenarios), not in `all`; so are the
// IPv6 scenarios (kernel-vxlan6, felt-vxlan6), which need the lab's IPv6
// underlay.
var scenarioTable = []scenarioDef{
	{Bare, kindBare, true, "", "", nil},
	{KernelVXLAN, kindKernelVXLAN, true, "", "", nil},
	{FeltUDP, kindFelt, true, `{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`, "", []Scenario{FlanneldUDP}},
	{FeltVXLAN, kindFelt, true, `{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}`, "", []Scenario{FlanneldVXLAN}},
	{FeltWireGuard, kindFelt, true, `{"Network":"10.11.0.0/16","Backend":{"Type":"wireguard"}}`, "", []Scenario{FeltUDP, WireGuardGo}},
	{WireGuardGo, kindWireGuardGo, true, "", "", nil},
	{FeltHostGW, kindFelt, false, `{"Network":"10.13.0.0/16","Backend":{"Type":"host-gw"}}`, "", []Scenario{FlanneldHostGW}},
	{FeltVXLANDirect, kindFelt, false, `{"Network":"10.14.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}`, "", []Scenario{FeltVXLAN}},
	{KernelVXLAN6, kindKernelVXLAN, false, "", "", nil},
	{FeltVXLAN6, kindFelt, false, `{"Network":"10.15.0.0/16","EnableIPv6":true,"IPv6Network":"fd15::/48","Backend":{"Type":"vxlan"}}`, "", []Scenario{KernelVXLAN6}},
	{FlanneldUDP, kindFlanneld, false, `{"Network":"10.8.0.0/16","Backend":{"Type":"udp"}}`, "", nil},
	{FlanneldVXLAN, kindFlanneld, false, `{"Network":"10.9.0.0/16","Backend":{"Type":"vxlan"}}`, "", nil},
	{FlanneldHostGW, kindFlanneld, false, `{"Network":"10.10.0.0/16","Backend":{"Type":"host-gw"}}`, "", nil},
}

// AllScenarios and FlanneldScenarios are the defaults, in report order;
// FlanneldScenarios are added to the default when Config.Flanneld is set.
// KnownScenarios is every scenario --scenarios takes.
var (
	AllScenarios      = scenarioNames(func(d scenarioDef) bool { return d.inAll && d.kind != kindFlanneld })
	FlanneldScenarios = scenarioNames(func(d scenarioDef) bool { return d.kind == kindFlanneld })
	KnownScenarios    = scenarioNames(func(scenarioDef) bool { return true })
	agentNets         = agentNetworks()
)

func scenarioNames(keep func(scenarioDef) bool) []Scenario {
	var out []Scenario
	for _, d := range scenarioTable {
		if keep(d) {
			out = append(out, d.name)
		}
	}
	return out
}

// def is sc's row (of its base, for a felt variant); ok false if none.
func (s Scenario) def() (scenarioDef, bool) {
	i := slices.IndexFunc(scenarioTable, func(d scenarioDef) bool { return d.name == s.Base() })
	if i < 0 {
		return scenarioDef{}, false
	}
	return scenarioTable[i], true
}

func (s Scenario) kind() scenarioKind {
	d, ok := s.def()
	if !ok {
		return -1
	}
	return d.kind
}

func (s Scenario) felt() bool     { return s.kind() == kindFelt }
func (s Scenario) flanneld() bool { return s.kind() == kindFlanneld && s.FeltFlags() == "" }

// agents says whether the scenario's path runs in processes of its own
// (felt or flanneld agents, wireguard-go), whose CPU is measured.
func (s Scenario) agents() bool {
	k := s.kind()
	return k == kindFelt || k == kindFlanneld || k == kindWireGuardGo
}

// countsPackets says whether the agents count the packets they forward
// (felt_packets_total): felt's own packet path, the udp and vxlan backends.
// Under wireguard the packets are wireguard-go's, under host-gw the
// kernel's.
func (s Scenario) countsPackets() bool {
	if !s.felt() {
		return false
	}
	n := agentNets[s.Base()]
	// Under DirectRouting the bench's two hosts share a segment, so felt
	// forwards nothing between them (the kernel's routes do).
	return (n.backend == "udp" || n.backend == "vxlan") && !n.direct
}

// needsVXLAN says whether the scenario needs the kernel's vxlan driver.
func (s Scenario) needsVXLAN() bool {
	return s == KernelVXLAN || s == KernelVXLAN6 || s == FlanneldVXLAN
}

// ipv6 says whether the scenario is measured between IPv6 overlay
// addresses over the lab's IPv6 underlay: kernel-vxlan6, and an agent
// scenario whose config has EnableIPv6.
func (s Scenario) ipv6() bool {
	if s.Base() == KernelVXLAN6 {
		return true
	}
	n, ok := agentNets[s.Base()]
	return ok && n.ipv6
}

// needsTools are the programs a scenario needs beyond the suite's own
// (tools); without them it is not run.
func (s Scenario) needsTools() []string {
	if s == WireGuardGo {
		return []string{"wireguard-go", "wg"}
	}
	return nil
}

// vs are the scenarios s's medians are also divided by.
func (s Scenario) vs() []Scenario {
	d, _ := s.def()
	return d.vs
}

// agentNet is an agent scenario's overlay network in etcd.
type agentNet struct {
	prefix  string       // etcd prefix: /felt-bench/<name>
	config  string       // the network config JSON
	network netip.Prefix // its Network
	backend string       // its Backend.Type
	direct  bool         // vxlan's DirectRouting: the two hosts' traffic takes kernel routes
	ipv6    bool         // EnableIPv6: measured between the IPv6 overlay addresses
	flags   string       // extra agent arguments
}

// agentNetworks reads the agent scenarios' rows; a row that does not parse
// is a programming error (TestScenarioTable).
func agentNetworks() map[Scenario]agentNet {
	out := map[Scenario]agentNet{}
	for _, d := range scenarioTable {
		if d.kind != kindFelt && d.kind != kindFlanneld {
			continue
		}
		n, err := parseAgentNet(d)
		if err != nil {
			panic(err)
		}
		out[d.name] = n
	}
	return out
}

func parseAgentNet(d scenarioDef) (agentNet, error) {
	var c struct {
		Network    string
		EnableIPv6 bool
		Backend    struct {
			Type          string
			DirectRouting bool
		}
	}
	if err := json.Unmarshal([]byte(d.config), &c); err != nil {
		return agentNet{}, fmt.Errorf("bench: scenario %s: config %s: %w", d.name, d.config, err)
	}
	p, err := netip.ParsePrefix(c.Network)
	if err != nil || p.Masked() != p {
		return agentNet{}, fmt.Errorf("bench: scenario %s: config Network %q: must be a network prefix such as 10.5.0.0/16", d.name, c.Network)
	}
	if c.Backend.Type == "" {
		return agentNet{}, fmt.Errorf("bench: scenario %s: config %s: no Backend.Type", d.name, d.config)
	}
	return agentNet{prefix: "/felt-bench/" + string(d.name), config: d.config, network: p, backend: c.Backend.Type,
		direct: c.Backend.DirectRouting, ipv6: c.EnableIPv6, flags: d.flags}, nil
}
