package uring

import "unsafe"

// The io_uring ABI (include/uapi/linux/io_uring.h), only what this package
// uses. golang.org/x/sys/unix has the syscall numbers but not these.

const (
	opWritev = 2
	opRead   = 22
	opWrite  = 23

	// io_uring_setup flags.
	setupSubmitAll   = 1 << 7 // 5.18: an SQE that fails to prepare does not stop the rest
	setupCoopTaskrun = 1 << 8 // 5.19: no IPI to run completion work; it runs when we enter

	// io_uring_params.features.
	featSingleMmap = 1 << 0 // 5.4: SQ and CQ rings share one mapping

	// io_uring_enter flags.
	enterGetEvents = 1 << 0

	// mmap offsets.
	offSQRing = 0
	offSQEs   = 0x10000000

	// io_uring_register opcodes.
	registerProbe = 8

	probeOpSupported = 1 << 0

	// rw_flags of READ/WRITE SQEs (RWF_* of preadv2).
	rwfNowait = 0x8
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe (64 bytes), with the unions flattened to the
// members this package sets.
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	rwFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

// cqe is struct io_uring_cqe without the IORING_SETUP_CQE32 extension.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

// probe is struct io_uring_probe with room for every opcode a u8 can name.
type probe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]probeOp
}

// Compile-time checks that the layouts match the kernel's.
var (
	_ [120 - unsafe.Sizeof(params{})]byte
	_ [unsafe.Sizeof(params{}) - 120]byte
	_ [64 - unsafe.Sizeof(sqe{})]byte
	_ [unsafe.Sizeof(sqe{}) - 64]byte
	_ [16 - unsafe.Sizeof(cqe{})]byte
	_ [unsafe.Sizeof(cqe{}) - 16]byte
	_ [8 - unsafe.Sizeof(probeOp{})]byte
)
