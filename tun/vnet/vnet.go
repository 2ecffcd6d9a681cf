// Package vnet holds the length of the virtio_net_hdr, the one fact about
// the TUN's framing that code on both sides of the TUN needs: the router
// and its fakes leave that much room before every packet they hand the
// device. It imports nothing, so depending on it pulls in no device code.
package vnet

// HdrLen is the length of struct virtio_net_hdr (linux/virtio_net.h), which
// a TUN opened with IFF_VNET_HDR puts before every packet it returns and
// expects before every packet written to it.
const HdrLen = 10
