// Package etcdstore is lease's adapter to etcd: the v3 client as flanneld's
// --etcd-* flags configure it (endpoints, TLS, auth, with errors that say what
// to fix), and Store, the lease.Store on etcd in flanneld's key layout and
// value shape (docs/flannel-compat.md §2.3, §2.5 and §2.6), plus the network
// config key.
//
// It imports lease and never the reverse: lease's Manager and Watcher hold
// only the logic of taking, keeping and following leases over the small
// lease.Store interface, so they stay in lease; everything that speaks etcd
// (grants and transactions, TTL lookups, turning an etcd watch stream into
// lease.WatchResponse batches with resumable revisions) is here.
//
// The tests that need etcd live here too, Manager's and Watcher's included:
// they check the two halves together against real servers (embedded and
// Debian's etcd 3.4, via lease/etcdtest.Run).
package etcdstore
