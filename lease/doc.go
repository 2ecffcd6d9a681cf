// Package lease is felt's control-plane core: flannel's network config,
// subnet lease keys and values, subnet allocation, the watch cache, the
// Manager that takes and keeps this node's lease, the Watcher that follows
// the others', and subnet.env. It follows flanneld's contract (config,
// keys, lease values, acquisition, watch and subnet.env: docs/flannel-compat.md
// §1, §2 and §5) and imports nothing of etcd.
//
// Manager (Acquire, Keep) and Watcher are here, not in the etcd adapter,
// because all they need is the Store interface: list, get, create-if-absent,
// update, delete and a revisioned watch. Which subnet to take, when to
// renew, when a lease counts as lost, how to resume or re-list a broken
// watch and which events a re-list yields are decisions of this package;
// how those calls are made on etcd (grants, transactions, TTL lookups,
// watch streams) is lease/etcdstore's, which implements Store and imports
// this package, never the reverse. Allocation and the watch cache (Cache)
// do no I/O at all.
package lease
