// Package encap holds felt's wire formats (flannel's udp and vxlan framing)
// and the batched UDP transport they travel on.
//
// Framing never copies a packet: Encap writes its header into headroom the
// caller reserved in front of the packet, and Decap returns a subslice of the
// datagram it was given. Both are safe for concurrent use (they keep no state
// per call) and allocate nothing.
package encap

// Headroom is what every packet buffer reserves before the packet: room for
// the largest header felt writes in place (vxlan: 8-byte VXLAN + 14-byte
// Ethernet = 22) and the TUN's 10-byte virtio_net_hdr. Read TUN packets at
// offset Headroom.
const Headroom = 32
