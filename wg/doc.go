// Package wg is felt's wireguard backend, flanneld's in userspace:
// wireguard-go's device (encryption, handshakes, AllowedIPs routing) on
// felt's TUN, with the private key persisted as flanneld persists it and the
// peers given as a whole list, applied as a diff.
//
// What is flanneld's contract (and so this package's) is written in
// docs/flannel-interop.md: the key file (/run/flannel/wgkey, base64, mode
// 0400), the peer of a lease (endpoint PublicIP:Port, AllowedIPs = its
// subnet, the config's PSK and keepalive for every peer) and the MTU
// (underlay − 80).
//
// Concurrency: a Device's methods may be called from any goroutine;
// SetPeers calls are serialised. wireguard-go runs its own goroutines (TUN
// reader, socket receivers, crypto workers) between New and Close.
package wg
