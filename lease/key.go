package lease

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
)

// SubnetsDir is the directory of lease keys under the etcd prefix.
const SubnetsDir = "subnets"

// SubnetKey returns a lease's etcd key: <prefix>/subnets/10.5.52.0-24, or
// with an IPv6 subnet <prefix>/subnets/10.12.13.0-24&fd00:12:13::-56. The
// prefix is joined as flanneld's path.Join does.
func SubnetKey(prefix string, sn, sn6 netip.Prefix) string {
	return path.Join(prefix, SubnetsDir, SubnetKeyName(sn, sn6))
}

// SubnetKeyName is the last element of SubnetKey. An IPv6-only lease (sn
// zero) is named as flanneld's MakeSubnetKey names its empty IPv4 half:
// 0.0.0.0-0&fd00:12:13::-64.
func SubnetKeyName(sn, sn6 netip.Prefix) string {
	if !sn.IsValid() {
		sn = noIPv4
	}
	name := sn.Addr().String() + "-" + strconv.Itoa(sn.Bits())
	if sn6.IsValid() {
		name += "&" + sn6.Addr().String() + "-" + strconv.Itoa(sn6.Bits())
	}
	return name
}

// subnetKeyRE is the pattern flanneld matches lease keys with (a fact of the
// contract, docs/flannel-compat.md §2.1), including its unescaped dots and
// lower-case-only IPv6. It is not anchored at the start.
var subnetKeyRE = regexp.MustCompile(`(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$`)

// noIPv4 is the IPv4 half of an IPv6-only key (EnableIPv4 false).
var noIPv4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)

// ParseSubnetKey parses the subnet(s) at the end of a lease key, as
// flanneld does: IPv4 length 0..31 (five bits), IPv6 length 0..127 (seven).
// felt is stricter than flanneld in one point: host bits must be zero, since
// no node writes such a key. sn6 is the zero Prefix for an IPv4-only key;
// sn is the zero Prefix for an IPv6-only key (0.0.0.0-0&<IPv6>-<len>), so
// that 0.0.0.0/0 never reaches a route table. 0.0.0.0-0 without an IPv6
// half parses as 0.0.0.0/0, which CheckPeer refuses.
func ParseSubnetKey(key string) (sn, sn6 netip.Prefix, err error) {
	m := subnetKeyRE.FindStringSubmatch(key)
	if m == nil {
		return sn, sn6, fmt.Errorf("subnet key %q: must end in <IPv4>-<len>[&<IPv6>-<len>]", key)
	}
	if sn, err = parseKeyPrefix(key, m[1], m[2], true); err != nil {
		return netip.Prefix{}, netip.Prefix{}, err
	}
	if m[3] != "" {
		if sn6, err = parseKeyPrefix(key, m[3], m[4], false); err != nil {
			return netip.Prefix{}, netip.Prefix{}, err
		}
	}
	if sn == noIPv4 && sn6.IsValid() {
		sn = netip.Prefix{}
	}
	return sn, sn6, nil
}

func parseKeyPrefix(key, addr, length string, is4 bool) (netip.Prefix, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() != is4 || a.Is4In6() {
		return netip.Prefix{}, fmt.Errorf("subnet key %q: %q: must be an %s address", key, addr, family(is4))
	}
	width := 7 // as flanneld's ParseUint bit sizes
	if is4 {
		width = 5
	}
	n, err := strconv.ParseUint(length, 10, width)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet key %q: length %q: must be in 0..%d", key, length, 1<<width-1)
	}
	p := netip.PrefixFrom(a, int(n))
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("subnet key %q: %s: host bits must be zero (%s)", key, p, p.Masked())
	}
	return p, nil
}
