package agent

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/feltnet/felt/internal/drop"
	"github.com/feltnet/felt/lease"
	"github.com/feltnet/felt/router"
	"github.com/feltnet/felt/tun"
	"github.com/feltnet/felt/wg"
)

// The wireguard backend: wireguard-go's device on felt's TUN does the packet
// path (package wg); the agent gives it the key, the lease attributes and
// the peers from the lease watcher.

// WireGuardKeyFile is the private key file's name; by default it lives
// beside the subnet file (so /run/flannel/wgkey, flanneld's path), and
// flanneld's WIREGUARD_KEY_FILE environment variable overrides it.
const WireGuardKeyFile = "wgkey"

func wireguardKeyFile(cfg Config) string {
	if f, ok := os.LookupEnv("WIREGUARD_KEY_FILE"); ok && f != "" {
		return f
	}
	return filepath.Join(filepath.Dir(cfg.SubnetFile), WireGuardKeyFile)
}

// newWireGuardPlane loads or makes the key, creates the TUN and starts
// wireguard-go on it, listening on ListenPort, before any lease is taken.
func newWireGuardPlane(b lease.Backend, ext extIface, public netip.Addr, cfg Config, log *zap.Logger) (*plane, error) {
	under := ext.MTU
	if b.MTU > 0 {
		under = b.MTU
	}
	p := &plane{backend: b.Type, kind: wireguardBackend, mtu: under - lease.WireGuardOverhead, port: uint16(b.ListenPort)}
	file := wireguardKeyFile(cfg)
	key, created, err := wg.LoadOrCreateKey(file)
	if err != nil {
		return nil, err
	}
	wc := wg.Config{PrivateKey: key, ListenPort: p.port, Keepalive: uint16(b.PersistentKeepaliveInterval)}
	if b.PSK != "" {
		// lease.Config.Validate checked it.
		psk, _ := lease.ParseWireGuardKey(b.PSK)
		wc.PSK = (*wg.Key)(&psk)
	}
	if created {
		log.Info("new wireguard key", zap.String("file", file), zap.Stringer("public_key", key.PublicKey()))
	}
	// Persistent, as for the other backends: while felt is down the
	// Network's route still points into felt0 (where packets are dropped)
	// rather than out of the default route in the clear.
	to := tun.DefaultOptions()
	to.Logger = log.Named("tun")
	to.Moderate = 0 // read moderation was measured for felt's own loops (udp, vxlan), not under wireguard-go
	devs, err := openPersistentTUN(cfg.TUNName, p.mtu, 1, to)
	if err != nil {
		return nil, err
	}
	dev := devs[0]
	if p.wg, err = wg.New(dev, wc, log.Named("wireguard")); err != nil {
		return nil, err
	}
	p.attrs = lease.NewWireGuardAttrs(public, p.wg.PublicKey(), p.port)
	return p, nil
}

// wireguardPeer completes p from a wireguard lease as flanneld's backend
// reads it: endpoint PublicIP:Port, the receiver's own ListenPort when an
// old flanneld published Port 0.
func (s *peerSet) wireguardPeer(p peer, a lease.Attrs) (peer, *rejection) {
	reject := func(rule, why string) (peer, *rejection) {
		return peer{}, &rejection{publicIP: a.PublicIP, rule: rule, why: why}
	}
	if a.BackendType != lease.BackendWireGuard {
		return reject(ruleBackendType, "backend type "+backendName(a.BackendType)+" is not wireguard")
	}
	d, key, err := a.WireGuard()
	if err != nil {
		return reject(ruleBackendData, err.Error())
	}
	if d.Port != 0 {
		p.Addr = netip.AddrPortFrom(a.PublicIP, d.Port)
	}
	p.key = key
	return p, nil
}

// key returns the wireguard public key of the peer for subnet sn.
func (s *peerSet) key(sn netip.Prefix) wg.Key { return s.peers[sn].key }

// wgOf returns the wireguard public key of the peer for subnet sn and when
// its lease was last added or changed (a count: higher is more recent).
func (s *peerSet) wgOf(sn netip.Prefix) (wg.Key, uint64) {
	p := s.peers[sn]
	return p.key, p.seq
}

// wgForwarder is the wireguard backend as the node's forwarder: Run waits,
// SetPeers reprograms wireguard-go's peers.
type wgForwarder struct {
	dev   *wg.Device
	peers *peerSet
	log   *zap.Logger
}

// Run returns when ctx ends, or with an error when wireguard-go stopped the
// device on its own (its TUN failed).
func (f *wgForwarder) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-f.dev.Done():
		return errors.New("wireguard device stopped (see the wireguard log above)")
	}
}

// SetPeers makes wireguard-go's peers those of list, keys taken from the
// peer set list was made from (on the same goroutine).
func (f *wgForwarder) SetPeers(list []router.Peer) {
	peers := wgPeers(f.dev.PublicKey(), list, f.peers.wgOf, f.log)
	if err := f.dev.SetPeers(peers); err != nil {
		f.log.Error("wireguard peers not updated", zap.Error(err))
	}
}

// wgPeers maps the router's peer list to wireguard-go's peers, one per
// public key; keyOf gives a subnet's key and when its lease last changed. A
// key published by several leases (a node whose public IP changed keeps
// its old lease until the TTL ends) gets all their subnets as AllowedIPs,
// the newest lease's first, at the newest lease's endpoint, as flanneld's
// latest event with ReplaceAllowedIPs would point it. A lease with our own
// key is skipped and logged.
func wgPeers(own wg.Key, list []router.Peer, keyOf func(netip.Prefix) (wg.Key, uint64), log *zap.Logger) []wg.Peer {
	type entry struct {
		peer wg.Peer
		seq  uint64 // of the lease whose endpoint it has
	}
	byKey := make(map[wg.Key]int, len(list)) // index into peers
	peers := make([]entry, 0, len(list))
	for _, p := range list {
		k, seq := keyOf(p.Subnet)
		if k == own {
			log.Warn("peer skipped: its lease publishes this node's own public key (a copied key file?)",
				zap.Stringer("subnet", p.Subnet), zap.Stringer("public_key", k))
			continue
		}
		i, dup := byKey[k]
		if !dup {
			byKey[k] = len(peers)
			peers = append(peers, entry{wg.Peer{PublicKey: k, Endpoint: p.Addr, AllowedIPs: []netip.Prefix{p.Subnet}}, seq})
			continue
		}
		e := &peers[i]
		if seq > e.seq {
			e.peer.Endpoint, e.seq = p.Addr, seq
			e.peer.AllowedIPs = append([]netip.Prefix{p.Subnet}, e.peer.AllowedIPs...)
		} else {
			e.peer.AllowedIPs = append(e.peer.AllowedIPs, p.Subnet)
		}
	}
	out := make([]wg.Peer, len(peers))
	for i, e := range peers {
		out[i] = e.peer
		if len(e.peer.AllowedIPs) > 1 {
			log.Info("one wireguard key in several leases (a node whose public IP changed, or a copied key file): "+
				"all their subnets to the newest lease's endpoint",
				zap.Stringer("public_key", e.peer.PublicKey), zap.Stringer("endpoint", e.peer.Endpoint),
				zap.Stringers("subnets", e.peer.AllowedIPs))
		}
	}
	return out
}

// SetLocal has nothing to do: the TUN's route carries the own subnet, and no
// peer's AllowedIPs hold it.
func (f *wgForwarder) SetLocal(netip.Prefix) {}

// SetFramer is never called: wireguard has no VtepMAC.
func (f *wgForwarder) SetFramer(router.Framer) error { return nil }

// SetLocal6 has nothing to do either: felt's wireguard carries IPv4 only.
func (f *wgForwarder) SetLocal6(netip.Prefix) {}

// wgStatus adds wireguard-go's per-peer state to a /status answer.
func wgStatus(dev *wg.Device, st *Status) {
	stats, err := dev.Stats()
	if err != nil {
		return
	}
	bySubnet := make(map[string]wg.PeerStats, len(stats))
	var rx, tx uint64
	for _, s := range stats {
		for _, a := range s.AllowedIPs {
			bySubnet[a.String()] = s
		}
		rx += s.RxBytes
		tx += s.TxBytes
	}
	for i := range st.Peers {
		s, ok := bySubnet[st.Peers[i].Subnet]
		if !ok {
			continue
		}
		p := &st.Peers[i]
		p.PublicKey = s.PublicKey.String()
		if s.Endpoint.IsValid() {
			p.Endpoint = s.Endpoint.String()
		}
		if !s.LastHandshake.IsZero() {
			t := s.LastHandshake
			p.LastHandshake = &t
		}
		p.RxBytes, p.TxBytes = s.RxBytes, s.TxBytes
	}
	if st.Counters == nil {
		st.Counters = map[string]uint64{}
	}
	st.Counters["wireguard_rx_bytes"] = rx
	st.Counters["wireguard_tx_bytes"] = tx
	d := dev.Dropped()
	for r := drop.Reason(1); r < drop.NumReasons; r++ {
		if d[r] > 0 {
			st.Counters["drop_"+r.String()] = d[r]
		}
	}
}

// wgCollector exports wireguard-go's per-peer state at scrape time.
type wgCollector struct {
	dev                    *wg.Device
	log                    *zap.Logger
	handshake, age, rx, tx *prometheus.Desc
}

func newWGCollector(dev *wg.Device, log *zap.Logger) *wgCollector {
	l := []string{"subnet", "public_key"}
	return &wgCollector{dev: dev, log: log,
		handshake: prometheus.NewDesc("felt_wireguard_peer_last_handshake_seconds", "When the last handshake with the peer completed (Unix time); absent before the first.", l, nil),
		age:       prometheus.NewDesc("felt_wireguard_peer_handshake_age_seconds", "Seconds since the last handshake with the peer completed; absent before the first.", l, nil),
		rx:        prometheus.NewDesc("felt_wireguard_peer_receive_bytes_total", "Encrypted bytes received from the peer.", l, nil),
		tx:        prometheus.NewDesc("felt_wireguard_peer_transmit_bytes_total", "Encrypted bytes sent to the peer.", l, nil),
	}
}

func (c *wgCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.handshake, c.age, c.rx, c.tx} {
		ch <- d
	}
}

func (c *wgCollector) Collect(ch chan<- prometheus.Metric) {
	stats, err := c.dev.Stats()
	if err != nil {
		c.log.Warn("wireguard metrics not read", zap.Error(err))
		return
	}
	now := time.Now()
	for _, s := range stats {
		subnet := ""
		if len(s.AllowedIPs) > 0 {
			subnet = s.AllowedIPs[0].String()
		}
		key := s.PublicKey.String()
		if !s.LastHandshake.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.handshake, prometheus.GaugeValue, float64(s.LastHandshake.UnixNano())/1e9, subnet, key)
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, now.Sub(s.LastHandshake).Seconds(), subnet, key)
		}
		ch <- prometheus.MustNewConstMetric(c.rx, prometheus.CounterValue, float64(s.RxBytes), subnet, key)
		ch <- prometheus.MustNewConstMetric(c.tx, prometheus.CounterValue, float64(s.TxBytes), subnet, key)
	}
}
