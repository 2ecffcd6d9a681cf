// Package uring is a small io_uring layer for felt's TUN I/O: a batch of
// packet reads or writes per io_uring_enter instead of a read(2) or
// writev(2) per packet. It is a thin wrapper on the raw syscalls
// (io_uring_setup, mmap of the rings, io_uring_enter, io_uring_register)
// through golang.org/x/sys/unix.
//
// # Use
//
// New(entries) sets up a Ring. Read and ReadConn fill caller buffers with
// packets from a TUN fd; Write and Writev hand a batch of packets (whole, or
// as iovec lists: a header and the payloads of a coalesced run) to it, with
// a result per packet. Every call submits its batch and reaps all of its
// completions before it returns: nothing stays in flight between calls.
//
// # Buffers
//
// A buffer belongs to the kernel from the submission of its SQE until its
// completion is reaped; since each call reaps all of its completions, that
// is for the duration of the call, after which it is the caller's again.
// Buffers and iovec arrays must be heap memory (a goroutine's stack can
// move). The Ring allocates nothing per call.
//
// # Concurrency
//
// A Ring is owned by one goroutine; a TUN read by one goroutine and written
// by another needs a Ring for each. Concurrent use panics. Close may come
// from any goroutine: it takes effect when the owner's current call returns.
//
// # Fallback
//
// New returns an error wrapping ErrUnavailable when io_uring cannot be used:
// the kernel has none (ENOSYS) or is older than 5.6, kernel.io_uring_disabled
// is 2 (EPERM for everyone) or 1 (EPERM without CAP_SYS_ADMIN or membership
// of kernel.io_uring_group), a seccomp filter blocks io_uring_setup (EPERM
// or ENOSYS, as container runtimes' default profiles do), the kernel lacks
// an opcode used here (found with IORING_REGISTER_PROBE), or the
// environment has FELT_IO_URING=off. The caller then keeps its read(2) /
// writev(2) path. Other errors from New are bad arguments or resource
// limits.
//
// # Kernel features
//
// Linux 5.6 or later: IORING_OP_READ, IORING_OP_WRITE, IORING_OP_WRITEV,
// IORING_REGISTER_PROBE, IORING_FEAT_SINGLE_MMAP; RWF_NOWAIT on READs
// (the TUN sets FMODE_NOWAIT). IORING_SETUP_SUBMIT_ALL (5.18) and
// IORING_SETUP_COOP_TASKRUN (5.19) are used when present. No SQPOLL, no
// registered buffers, no multishot: see README.md for what was measured.
package uring
