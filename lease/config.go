package lease

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
)

// Config is flanneld's network config, stored as JSON at <prefix>/config,
// after defaults. ParseConfig is the only way in that applies them.
type Config struct {
	Network   netip.Prefix // IPv4, masked
	SubnetLen int          // per-node prefix length
	SubnetMin netip.Addr   // first subnet handed out (inclusive)
	SubnetMax netip.Addr   // last subnet handed out (inclusive)

	EnableIPv4 bool // felt's etcd mode requires true, as flanneld's etcd keys always carry IPv4
	EnableIPv6 bool

	IPv6Network   netip.Prefix // masked; used only when EnableIPv6
	IPv6SubnetLen int
	IPv6SubnetMin netip.Addr
	IPv6SubnetMax netip.Addr

	EnableNFTables bool // carried for flanneld; felt's --ip-masq and forward rules use iptables regardless
	Backend        Backend
}

// configJSON is the stored shape. Without json tags, encoding/json matches
// keys case-insensitively, as flanneld does.
type configJSON struct {
	Network        string
	SubnetLen      int
	SubnetMin      string
	SubnetMax      string
	EnableIPv4     bool
	EnableIPv6     bool
	IPv6Network    string
	IPv6SubnetLen  int
	IPv6SubnetMin  string
	IPv6SubnetMax  string
	EnableNFTables bool
	Backend        json.RawMessage
}

// ParseConfig decodes flanneld's network config JSON, applies flanneld's
// defaults and validates the result. Every error names the field, the value
// and the rule it broke (a *FieldError where a single field is at fault).
func ParseConfig(data []byte) (*Config, error) {
	raw := configJSON{EnableIPv4: true} // flanneld presets it before decoding
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, jsonErr("", err)
	}
	c := &Config{
		SubnetLen:      raw.SubnetLen,
		EnableIPv4:     raw.EnableIPv4,
		EnableIPv6:     raw.EnableIPv6,
		IPv6SubnetLen:  raw.IPv6SubnetLen,
		EnableNFTables: raw.EnableNFTables,
	}
	var err error
	if c.Network, c.SubnetMin, c.SubnetMax, err = pool4.parse(raw.Network, raw.SubnetMin, raw.SubnetMax); err != nil {
		return nil, err
	}
	if c.IPv6Network, c.IPv6SubnetMin, c.IPv6SubnetMax, err = pool6.parse(raw.IPv6Network, raw.IPv6SubnetMin, raw.IPv6SubnetMax); err != nil {
		return nil, err
	}
	if c.Backend, err = parseBackend(raw.Backend); err != nil {
		return nil, err
	}
	if err := c.applyDefaults(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse parses the pool's Network, SubnetMin and SubnetMax as stored; an
// empty string is the zero value, for applyDefaults to fill.
func (p pool) parse(network, subnetMin, subnetMax string) (n netip.Prefix, lo, hi netip.Addr, err error) {
	if n, err = parsePrefixField(p.network, network, p.is4); err != nil {
		return n, lo, hi, err
	}
	if lo, err = parseAddrField(p.min, subnetMin, p.is4); err != nil {
		return n, lo, hi, err
	}
	hi, err = parseAddrField(p.max, subnetMax, p.is4)
	return n, lo, hi, err
}

// parsePrefixField parses a CIDR of the given family and masks it, as
// flanneld's net.ParseCIDR does. An empty string is the zero Prefix.
func parsePrefixField(field, s string, want4 bool) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fieldErr(field, s, "must be a CIDR prefix such as %s", example(want4, true))
	}
	if p.Addr().Is4() != want4 || p.Addr().Is4In6() {
		return p, fieldErr(field, s, "must be an %s prefix such as %s", family(want4), example(want4, true))
	}
	return p.Masked(), nil
}

func parseAddrField(field, s string, want4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4() != want4 || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fieldErr(field, s, "must be an %s address such as %s", family(want4), example(want4, false))
	}
	return a, nil
}

func family(is4 bool) string {
	if is4 {
		return "IPv4"
	}
	return "IPv6"
}

func example(is4, prefix bool) string {
	switch {
	case is4 && prefix:
		return "10.5.0.0/16"
	case is4:
		return "10.5.1.0"
	case prefix:
		return "fd00:5::/48"
	}
	return "fd00:5:0:1::"
}

// MarshalJSON writes the config in flanneld's shape, with defaults made
// explicit. The Backend object is written as stored (Backend.Raw) when there
// is one, so keys felt does not model survive a round trip.
func (c *Config) MarshalJSON() ([]byte, error) {
	out := struct {
		Network        string `json:",omitempty"`
		SubnetLen      int    `json:",omitempty"`
		SubnetMin      string `json:",omitempty"`
		SubnetMax      string `json:",omitempty"`
		EnableIPv4     bool
		EnableIPv6     bool            `json:",omitempty"`
		IPv6Network    string          `json:",omitempty"`
		IPv6SubnetLen  int             `json:",omitempty"`
		IPv6SubnetMin  string          `json:",omitempty"`
		IPv6SubnetMax  string          `json:",omitempty"`
		EnableNFTables bool            `json:",omitempty"`
		Backend        json.RawMessage `json:",omitempty"`
	}{
		Network:        prefixString(c.Network),
		SubnetLen:      c.SubnetLen,
		SubnetMin:      addrString(c.SubnetMin),
		SubnetMax:      addrString(c.SubnetMax),
		EnableIPv4:     c.EnableIPv4,
		EnableIPv6:     c.EnableIPv6,
		IPv6Network:    prefixString(c.IPv6Network),
		IPv6SubnetLen:  c.IPv6SubnetLen,
		IPv6SubnetMin:  addrString(c.IPv6SubnetMin),
		IPv6SubnetMax:  addrString(c.IPv6SubnetMax),
		EnableNFTables: c.EnableNFTables,
	}
	b, err := c.Backend.marshal()
	if err != nil {
		return nil, err
	}
	out.Backend = b
	return json.Marshal(out)
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Contains reports whether sn is a subnet this config hands out: an IPv4
// prefix of SubnetLen bits, masked, between SubnetMin and SubnetMax.
func (c *Config) Contains(sn netip.Prefix) bool {
	return inPool(sn, c.SubnetLen, c.SubnetMin, c.SubnetMax)
}

// ContainsIPv6 is Contains for the IPv6 pool; false unless EnableIPv6.
func (c *Config) ContainsIPv6(sn netip.Prefix) bool {
	return c.EnableIPv6 && inPool(sn, c.IPv6SubnetLen, c.IPv6SubnetMin, c.IPv6SubnetMax)
}

func inPool(sn netip.Prefix, bits int, lo, hi netip.Addr) bool {
	return sn.IsValid() && lo.IsValid() && hi.IsValid() &&
		sn.Addr().BitLen() == lo.BitLen() && !sn.Addr().Is4In6() &&
		sn.Bits() == bits && sn.Masked() == sn &&
		lo.Compare(sn.Addr()) <= 0 && sn.Addr().Compare(hi) <= 0
}

// Equal reports whether two configs mean the same; Backend.Raw is compared
// by the JSON value it holds, so whitespace and escapes do not count
// (json.Marshal writes "&" in a key as "\u0026").
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	a, b := *c, *o
	ra, rb := a.Backend.Raw, b.Backend.Raw
	a.Backend.Raw, b.Backend.Raw = nil, nil
	return reflect.DeepEqual(a, b) && sameJSON(ra, rb)
}

// sameJSON compares two JSON texts by value; unparsable ones by their
// compacted bytes.
func sameJSON(x, y []byte) bool {
	var vx, vy any
	if json.Unmarshal(x, &vx) == nil && json.Unmarshal(y, &vy) == nil {
		return reflect.DeepEqual(vx, vy)
	}
	return bytes.Equal(compactJSON(x), compactJSON(y))
}

func compactJSON(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}
