package tcpcheck

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestSendReceiveOverLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var also bytes.Buffer
	got := Receive(ln, &also, time.Minute)
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const size = 1<<20 + 3
	sent, sum, err := Send(conn, 42, size)
	conn.Close()
	if err != nil || sent != size {
		t.Fatalf("Send = %d, %v; want %d, nil", sent, err, size)
	}
	r := <-got
	if err := r.Check(sent, sum); err != nil {
		t.Fatal(err)
	}
	if r.From != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("From = %s, want 127.0.0.1", r.From)
	}
	if sha256.Sum256(also.Bytes()) != sum {
		t.Errorf("also got %d bytes that are not the ones sent", also.Len())
	}
	if err := r.Check(sent+1, sum); err == nil {
		t.Error("Check against one byte more: nil")
	}
}

func TestStreamIsSeeded(t *testing.T) {
	read := func(seed uint64) []byte {
		b, err := io.ReadAll(io.LimitReader(Stream(seed), 4096))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(read(7), read(7)) {
		t.Error("seed 7 gave two different streams")
	}
	if bytes.Equal(read(7), read(7<<8)) {
		t.Error("seeds 7 and 7<<8 gave the same stream")
	}
}

func TestCheckSaysWhatDiffers(t *testing.T) {
	sum := sha256.Sum256([]byte("abc"))
	other := sha256.Sum256([]byte("abd"))
	for _, tc := range []struct {
		name string
		r    Received
		want string // "" = nil
	}{
		{"same", Received{N: 3, Sum: sum}, ""},
		{"short", Received{N: 2, Sum: sum}, "received 2 bytes (sha256 " + fmt.Sprintf("%x", sum[:6]) + "…), sent 3"},
		{"other bytes", Received{N: 3, Sum: other}, "received 3 bytes (sha256 " + fmt.Sprintf("%x", other[:6]) + "…), sent 3 (sha256 " + fmt.Sprintf("%x", sum[:6]) + "…)"},
		{"error", Received{N: 3, Sum: sum, Err: io.ErrUnexpectedEOF}, "receive: unexpected EOF"},
	} {
		err := tc.r.Check(3, sum)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want nil", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to contain %q", tc.name, err, tc.want)
		}
		if tc.r.Err != nil && !errors.Is(err, tc.r.Err) {
			t.Errorf("%s: %v does not wrap %v", tc.name, err, tc.r.Err)
		}
	}
}

func TestReceiveClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := Receive(ln, io.Discard, 0)
	ln.Close()
	if r := <-got; !errors.Is(r.Err, net.ErrClosed) {
		t.Errorf("Receive on a closed listener: %+v, want net.ErrClosed", r)
	}
}
