// Package tun creates and configures felt's TUN device.
//
// The device itself is golang.zx2c4.com/wireguard/tun's Linux device, opened
// with IFF_VNET_HDR so that reads return split TSO segments and writes are
// GRO-coalesced (see OffloadsOf). Address, MTU, link state and routes are set
// over netlink, the way flanneld sets up flannel0.
//
// Everything here runs in the network namespace of the calling OS thread:
// callers that switch namespaces must lock their thread first.
package tun
