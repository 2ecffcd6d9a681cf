package lease

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/feltnet/felt/internal/atomicfile"
)

// DefaultSubnetFile is flanneld's default --subnet-file.
const DefaultSubnetFile = "/run/flannel/subnet.env"

// SubnetEnv is the content of flanneld's subnet.env, read by the CNI flannel
// plugin, by Docker units, and by felt itself to reuse its previous subnet.
type SubnetEnv struct {
	Network     netip.Prefix // FLANNEL_NETWORK; zero to leave out the IPv4 lines
	Subnet      netip.Prefix // the lease subnet, masked (written as its first address: 10.5.52.1/24)
	IPv6Network netip.Prefix // FLANNEL_IPV6_NETWORK; zero to leave out the IPv6 lines
	IPv6Subnet  netip.Prefix // masked, written as its first address
	MTU         int          // FLANNEL_MTU: the overlay MTU
	IPMasq      bool         // FLANNEL_IPMASQ
}

// MarshalSubnetEnv returns the file's bytes in flanneld's exact format and
// key order: no quotes, no export, one KEY=value per line.
func MarshalSubnetEnv(e SubnetEnv) ([]byte, error) {
	if !e.Network.IsValid() && !e.IPv6Network.IsValid() {
		return nil, fmt.Errorf("subnet.env: Network and IPv6Network both unset: at least one is required")
	}
	if e.MTU < 68 || e.MTU > 65535 {
		return nil, fmt.Errorf("subnet.env: MTU %d: must be in 68..65535", e.MTU)
	}
	var b []byte
	if e.Network.IsValid() {
		first, err := firstAddr("Subnet", e.Subnet, true, 30)
		if err != nil {
			return nil, err
		}
		if !e.Network.Addr().Is4() {
			return nil, fmt.Errorf("subnet.env: Network %s: must be an IPv4 prefix", e.Network)
		}
		b = fmt.Appendf(b, "FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s\n", e.Network.Masked(), first)
	}
	if e.IPv6Network.IsValid() {
		first, err := firstAddr("IPv6Subnet", e.IPv6Subnet, false, 126)
		if err != nil {
			return nil, err
		}
		if !e.IPv6Network.Addr().Is6() || e.IPv6Network.Addr().Is4In6() {
			return nil, fmt.Errorf("subnet.env: IPv6Network %s: must be an IPv6 prefix", e.IPv6Network)
		}
		b = fmt.Appendf(b, "FLANNEL_IPV6_NETWORK=%s\nFLANNEL_IPV6_SUBNET=%s\n", e.IPv6Network.Masked(), first)
	}
	return fmt.Appendf(b, "FLANNEL_MTU=%d\nFLANNEL_IPMASQ=%t\n", e.MTU, e.IPMasq), nil
}

// firstAddr is flanneld's FLANNEL_SUBNET form: the subnet's first usable
// address with the subnet's length.
func firstAddr(field string, sn netip.Prefix, is4 bool, maxLen int) (netip.Prefix, error) {
	if !sn.IsValid() || sn.Addr().Is4() != is4 || sn.Addr().Is4In6() || sn.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("subnet.env: %s %q: must be an %s prefix", field, sn, family(is4))
	}
	if sn.Bits() > maxLen {
		return netip.Prefix{}, fmt.Errorf("subnet.env: %s %s: must be /%d or shorter", field, sn, maxLen)
	}
	return netip.PrefixFrom(sn.Masked().Addr().Next(), sn.Bits()), nil
}

// WriteSubnetEnv writes the file atomically: a temporary file in the same
// directory, synced, then renamed over path, so a reader sees the old file
// or the new one and never a part. The directory is created 0755, the file
// is 0644.
func WriteSubnetEnv(path string, e SubnetEnv) error {
	data, err := MarshalSubnetEnv(e)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("subnet.env: %w", err)
	}
	return nil
}

// ReadSubnetEnv reads a subnet.env written by felt, flanneld or a person.
// See ParseSubnetEnv for what it accepts. A missing file is an error that
// matches fs.ErrNotExist.
func ReadSubnetEnv(path string) (SubnetEnv, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("subnet.env: %w", err)
	}
	e, err := ParseSubnetEnv(data)
	if err != nil {
		return e, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// ParseSubnetEnv is a tolerant reader in godotenv's manner: KEY=value lines,
// blank lines and # comments, an optional "export ", optional single or
// double quotes, a trailing " # comment" after an unquoted value. Unknown
// keys are ignored; a known key with a bad value is an error naming the
// line. Subnets are returned masked. FLANNEL_NETWORK may be a comma list
// (newer CNI plugins accept one): its first entry is the Network.
func ParseSubnetEnv(data []byte) (SubnetEnv, error) {
	var e SubnetEnv
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		key, val, ok, err := envLine(sc.Text())
		if err != nil {
			return SubnetEnv{}, fmt.Errorf("subnet.env line %d: %w", n, err)
		}
		if !ok {
			continue
		}
		if err := e.set(key, val); err != nil {
			return SubnetEnv{}, fmt.Errorf("subnet.env line %d: %s %q: %w", n, key, val, err)
		}
	}
	if err := sc.Err(); err != nil {
		return SubnetEnv{}, fmt.Errorf("subnet.env: %w", err)
	}
	return e, nil
}

// envLine splits one line; ok is false for blank and comment lines.
func envLine(line string) (key, val string, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", "", false, nil
	}
	line = strings.TrimPrefix(line, "export ")
	key, val, found := strings.Cut(line, "=")
	key = strings.TrimSpace(key)
	if !found || key == "" {
		return "", "", false, fmt.Errorf("%.40q: must be KEY=value", line)
	}
	val = strings.TrimSpace(val)
	if len(val) > 0 && (val[0] == '"' || val[0] == '\'') {
		end := strings.IndexByte(val[1:], val[0])
		if end < 0 {
			return "", "", false, fmt.Errorf("%s: unterminated quote", key)
		}
		return key, val[1 : 1+end], true, nil
	}
	if i := strings.Index(val, " #"); i >= 0 {
		val = strings.TrimSpace(val[:i])
	}
	return key, val, true, nil
}

func (e *SubnetEnv) set(key, val string) error {
	var err error
	switch key {
	case "FLANNEL_NETWORK":
		first, _, _ := strings.Cut(val, ",")
		e.Network, err = envPrefix(first, true)
	case "FLANNEL_SUBNET":
		e.Subnet, err = envPrefix(val, true)
	case "FLANNEL_IPV6_NETWORK":
		first, _, _ := strings.Cut(val, ",")
		e.IPv6Network, err = envPrefix(first, false)
	case "FLANNEL_IPV6_SUBNET":
		e.IPv6Subnet, err = envPrefix(val, false)
	case "FLANNEL_MTU":
		e.MTU, err = strconv.Atoi(val)
		if err != nil {
			err = fmt.Errorf("must be an integer")
		}
	case "FLANNEL_IPMASQ":
		e.IPMasq, err = strconv.ParseBool(val)
		if err != nil {
			err = fmt.Errorf("must be true or false")
		}
	}
	return err
}

func envPrefix(s string, is4 bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || p.Addr().Is4() != is4 || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("must be an %s CIDR prefix", family(is4))
	}
	return p.Masked(), nil
}
