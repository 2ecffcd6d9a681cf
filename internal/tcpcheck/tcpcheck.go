// Package tcpcheck checks a TCP transfer byte for byte: the sender writes a
// seeded pseudo-random stream and hashes what it took from it, the receiver
// hashes what arrived, and equal counts and SHA-256 sums mean every byte came
// through intact and in order. The demo's check and the e2e tests use it.
package tcpcheck

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// Stream is an endless pseudo-random byte stream: ChaCha8, fast enough not to
// limit a transfer, and the same bytes for the same seed.
func Stream(seed uint64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// Send writes size bytes of Stream(seed) to w. It returns how many w took and
// the SHA-256 of the bytes taken from the stream, which are the bytes sent
// when err is nil.
func Send(w io.Writer, seed uint64, size int64) (sent int64, sum [32]byte, err error) {
	h := sha256.New()
	sent, err = io.Copy(w, io.TeeReader(io.LimitReader(Stream(seed), size), h))
	h.Sum(sum[:0])
	return sent, sum, err
}

// Received is what the connection Receive accepted delivered.
type Received struct {
	N    int64      // bytes read until the peer closed (or Err)
	Sum  [32]byte   // their SHA-256
	From netip.Addr // the connection's source address
	Err  error      // from Accept or from reading; nil when the peer closed
}

// Receive accepts one connection on ln in a goroutine and reads it to its
// end, hashing every byte and writing it to also as well (io.Discard for
// nowhere else). The result comes on the returned channel, which has room
// for it, so the goroutine ends even when nobody waits for it. within > 0
// bounds the connection's life from Accept on; 0 leaves it unbounded (a
// stream that runs for as long as a test needs). Closing ln before a
// connection arrives ends the goroutine with Accept's error.
func Receive(ln net.Listener, also io.Writer, within time.Duration) <-chan Received {
	got := make(chan Received, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- Received{Err: err}
			return
		}
		defer conn.Close()
		if within > 0 {
			conn.SetDeadline(time.Now().Add(within))
		}
		h := sha256.New()
		r := Received{}
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			r.From = ta.AddrPort().Addr()
		}
		r.N, r.Err = io.Copy(io.MultiWriter(h, also), conn)
		h.Sum(r.Sum[:0])
		got <- r
	}()
	return got
}

// Check is nil when r is exactly the n bytes with SHA-256 sum that were sent;
// otherwise it is r.Err or says how the two differ.
func (r Received) Check(n int64, sum [32]byte) error {
	if r.Err != nil {
		return fmt.Errorf("receive: %w", r.Err)
	}
	if r.N != n || r.Sum != sum {
		return fmt.Errorf("received %d bytes (sha256 %x…), sent %d (sha256 %x…)", r.N, r.Sum[:6], n, sum[:6])
	}
	return nil
}
