package lease

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Backend types felt speaks: the packet backends (udp, vxlan, wireguard), the
// route backend (host-gw) and the two without a data path (alloc, extension).
const (
	BackendUDP       = "udp"
	BackendVXLAN     = "vxlan"
	BackendWireGuard = "wireguard"
	BackendHostGW    = "host-gw"
	BackendAlloc     = "alloc"
	BackendExtension = "extension"
)

// Default UDP ports: the kernel's vxlan port as flanneld uses it, and
// flanneld's udp backend port.
const (
	DefaultVXLANPort = 8472
	DefaultUDPPort   = 8285
)

// flanneld's wireguard defaults: ListenPort, ListenPortV6 and Mode.
const (
	DefaultWireGuardPort   = 51820
	DefaultWireGuardPortV6 = 51821
	WireGuardModeSeparate  = "separate"
)

// MaxVNI is the largest 24-bit VXLAN network identifier.
const MaxVNI = 1<<24 - 1

// Backend is the "Backend" object of the network config.
type Backend struct {
	Type                         string // lower-cased; "udp" when Backend is absent (flanneld's parseBackendType)
	Port                         int    // 0 = backend default
	VNI                          int    // vxlan; default 1
	MTU                          int    // vxlan, wireguard: underlay MTU override, 0 = interface MTU
	GBP, Learning, DirectRouting bool

	// wireguard (flanneld's names and defaults).
	PSK                         string // base64 pre-shared key for every peer; "" = none
	ListenPort                  int    // default 51820
	ListenPortV6                int    // default 51821; felt carries IPv4 only and opens no IPv6 device
	PersistentKeepaliveInterval int    // seconds; 0 = off
	Mode                        string // "separate" (default), "auto", "ipv4" or "ipv6", lower-cased

	Extension ExtensionCommands // extension only

	Raw json.RawMessage // the Backend object as stored; nil when absent
}

// ExtensionCommands are the extension backend's four commands, as flanneld
// reads them: each is split on white space (no shell) and $VAR or ${VAR} in
// it is expanded from the environment the command gets.
type ExtensionCommands struct {
	PreStartupCommand   string // before the lease; its output becomes BackendData
	PostStartupCommand  string // after the lease
	SubnetAddCommand    string // per added peer lease
	SubnetRemoveCommand string // per removed peer lease
}

// UDPPort is the port the backend listens on and sends to.
func (b Backend) UDPPort() int {
	switch {
	case b.Port != 0:
		return b.Port
	case b.Type == BackendVXLAN:
		return DefaultVXLANPort
	case b.Type == BackendWireGuard:
		return b.ListenPort
	}
	return DefaultUDPPort
}

// backendJSON holds the keys of flanneld's udp and vxlan configs. VNI is a
// pointer so that an absent VNI defaults to 1 while an explicit 0 is refused.
type backendJSON struct {
	Type          string
	Port          int
	VNI           *int
	MTU           int
	GBP           bool
	Learning      bool
	DirectRouting bool

	PSK                         string
	ListenPort                  *int
	ListenPortV6                *int
	PersistentKeepaliveInterval int
	Mode                        string

	ExtensionCommands
}

func parseBackend(raw json.RawMessage) (Backend, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Backend{Type: BackendUDP}, nil
	}
	var bj backendJSON
	if err := json.Unmarshal(raw, &bj); err != nil {
		return Backend{}, jsonErr("Backend", err)
	}
	b := Backend{
		Type:          strings.ToLower(bj.Type),
		Port:          bj.Port,
		MTU:           bj.MTU,
		GBP:           bj.GBP,
		Learning:      bj.Learning,
		DirectRouting: bj.DirectRouting,
		PSK:           bj.PSK,
		Mode:          strings.ToLower(bj.Mode),
		Extension:     bj.ExtensionCommands,
		Raw:           append(json.RawMessage(nil), raw...),

		PersistentKeepaliveInterval: bj.PersistentKeepaliveInterval,
	}
	switch {
	case bj.VNI != nil:
		b.VNI = *bj.VNI
	case b.Type == BackendVXLAN:
		b.VNI = 1
	}
	if b.Type == BackendWireGuard {
		b.ListenPort, b.ListenPortV6 = DefaultWireGuardPort, DefaultWireGuardPortV6
		if b.Mode == "" {
			b.Mode = WireGuardModeSeparate
		}
	}
	if bj.ListenPort != nil {
		b.ListenPort = *bj.ListenPort
	}
	if bj.ListenPortV6 != nil {
		b.ListenPortV6 = *bj.ListenPortV6
	}
	return b, nil
}

// validate checks the backend keys felt uses.
func (b Backend) validate() error {
	switch b.Type {
	case BackendUDP, BackendVXLAN, BackendHostGW, BackendAlloc, BackendExtension:
	case BackendWireGuard:
		return b.validateWireGuard()
	default:
		return fieldErr("Backend.Type", b.Type, "felt speaks only %q, %q, %q, %q, %q and %q (flanneld's backends that need no kernel module)",
			BackendUDP, BackendVXLAN, BackendWireGuard, BackendHostGW, BackendAlloc, BackendExtension)
	}
	if b.Port < 0 || b.Port > 65535 {
		return fieldErr("Backend.Port", b.Port, "must be in 1..65535 (0 or absent: %d)", Backend{Type: b.Type}.UDPPort())
	}
	if b.Type == BackendVXLAN && (b.VNI < 1 || b.VNI > MaxVNI) {
		return fieldErr("Backend.VNI", b.VNI, "must be in 1..%d", MaxVNI)
	}
	// The overlay MTU is MTU-50; IPv4 needs at least 68 bytes.
	if b.MTU != 0 && (b.MTU < 68+50 || b.MTU > 65535) {
		return fieldErr("Backend.MTU", b.MTU, "must be 0 (interface MTU) or in 118..65535")
	}
	if b.Type == BackendExtension {
		e := b.Extension
		for _, c := range []struct{ field, cmd string }{{"PreStartupCommand", e.PreStartupCommand},
			{"PostStartupCommand", e.PostStartupCommand}, {"SubnetAddCommand", e.SubnetAddCommand},
			{"SubnetRemoveCommand", e.SubnetRemoveCommand}} {
			if c.cmd != "" && strings.TrimSpace(c.cmd) == "" {
				return fieldErr("Backend."+c.field, c.cmd, "must name a program (or be absent)")
			}
		}
	}
	return nil
}

// marshal returns the Backend object to store: Raw when there is one,
// nothing for flanneld's implicit udp default, else the modelled keys.
func (b Backend) marshal() (json.RawMessage, error) {
	if len(b.Raw) != 0 {
		return b.Raw, nil
	}
	if b.Type == BackendUDP && b.Port == 0 && b.VNI == 0 && b.MTU == 0 && !b.GBP && !b.Learning && !b.DirectRouting &&
		b.Extension == (ExtensionCommands{}) {
		return nil, nil
	}
	e := b.Extension
	return json.Marshal(struct {
		Type                        string
		Port                        int    `json:",omitempty"`
		VNI                         int    `json:",omitempty"`
		MTU                         int    `json:",omitempty"`
		GBP                         bool   `json:",omitempty"`
		Learning                    bool   `json:",omitempty"`
		DirectRouting               bool   `json:",omitempty"`
		PSK                         string `json:",omitempty"`
		ListenPort                  int    `json:",omitempty"`
		ListenPortV6                int    `json:",omitempty"`
		PersistentKeepaliveInterval int    `json:",omitempty"`
		Mode                        string `json:",omitempty"`
		// The extension's keys, as flanneld reads them.
		PreStartupCommand   string `json:",omitempty"`
		PostStartupCommand  string `json:",omitempty"`
		SubnetAddCommand    string `json:",omitempty"`
		SubnetRemoveCommand string `json:",omitempty"`
	}{b.Type, b.Port, b.VNI, b.MTU, b.GBP, b.Learning, b.DirectRouting,
		b.PSK, b.ListenPort, b.ListenPortV6, b.PersistentKeepaliveInterval, b.Mode,
		e.PreStartupCommand, e.PostStartupCommand, e.SubnetAddCommand, e.SubnetRemoveCommand})
}
