package wg

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/feltnet/felt/internal/drop"
)

// PeerStats is what wireguard-go reports of one peer.
type PeerStats struct {
	PublicKey     Key
	Endpoint      netip.AddrPort // the current one: the lease's, or where the peer last sent from
	AllowedIPs    []netip.Prefix
	LastHandshake time.Time // zero: no handshake yet
	RxBytes       uint64    // bytes received from the peer (encrypted, on the wire)
	TxBytes       uint64    // bytes sent to it
}

// Stats reads every peer's state; it is for /status and /metrics, not the
// packet path (wireguard-go formats it as text under its locks).
func (w *Device) Stats() ([]PeerStats, error) {
	s, err := w.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("wireguard: read %s: %w", w.name, err)
	}
	return parseStats(s)
}

// Dropped returns what felt's TUN dropped under wireguard-go, by reason
// (index drop.Reason): malformed frames from the kernel, and decrypted
// packets whose checksums do not hold. drop.OK's slot is always 0.
func (w *Device) Dropped() [drop.NumReasons]uint64 { return w.tun.dropped() }

// parseStats reads wireguard-go's UAPI "get" output (key=value lines; a
// public_key line starts a peer).
func parseStats(s string) ([]PeerStats, error) {
	var out []PeerStats
	var p *PeerStats
	var sec, nsec int64
	flush := func() {
		if p != nil && (sec != 0 || nsec != 0) {
			p.LastHandshake = time.Unix(sec, nsec)
		}
		sec, nsec = 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if key == "public_key" {
			flush()
			b, err := hex.DecodeString(val)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("wireguard: device reports public_key %q", val)
			}
			out = append(out, PeerStats{})
			p = &out[len(out)-1]
			copy(p.PublicKey[:], b)
			continue
		}
		if p == nil {
			continue // device settings
		}
		var err error
		switch key {
		case "endpoint":
			p.Endpoint, err = netip.ParseAddrPort(val)
		case "allowed_ip":
			var a netip.Prefix
			if a, err = netip.ParsePrefix(val); err == nil {
				p.AllowedIPs = append(p.AllowedIPs, a)
			}
		case "last_handshake_time_sec":
			sec, err = strconv.ParseInt(val, 10, 64)
		case "last_handshake_time_nsec":
			nsec, err = strconv.ParseInt(val, 10, 64)
		case "rx_bytes":
			p.RxBytes, err = strconv.ParseUint(val, 10, 64)
		case "tx_bytes":
			p.TxBytes, err = strconv.ParseUint(val, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("wireguard: device reports %s=%q: %w", key, val, err)
		}
	}
	flush()
	return out, nil
}
