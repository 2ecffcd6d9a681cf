// Package tun creates and configures felt's TUN device.
//
// Create opens /dev/net/tun with IFF_VNET_HDR and turns on checksum and
// segmentation offloads (TUNSETOFFLOAD), so that the kernel hands Device.Read
// TSO/USO super-packets, which Read splits, and Device.Write may hand the
// kernel coalesced TCP and UDP runs as super-packets (see Device). Address,
// MTU, link state and routes are set over netlink, the way flanneld sets up
// flannel0. The device starts no goroutine and listens to no link events.
//
// Everything here runs in the network namespace of the calling OS thread:
// callers that switch namespaces must lock their thread first.
package tun
