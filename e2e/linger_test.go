package e2e

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/feltnet/felt/router"
)

// TestLingerRequestResponse: one-byte TCP request/response between two
// hosts, every echo checked. The server host's agent writes each request
// into its TUN and, lingering, picks the server's reply up before it
// parks: its linger_hits count them. The server answers 200 µs after a
// request (busy, as a sub-millisecond sleep may take a millisecond), so
// that the reply comes after the wait's first poll; FELT_LINGER is 1 ms,
// so that it still comes within the wait on a loaded machine. The agents'
// logs say the linger they run with.
func TestLingerRequestResponse(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("lingering needs two Ps per queue; this machine has one CPU")
	}
	t.Setenv(router.LingerEnv, "1000")
	eachPacketBackend(t, 2, func(t *testing.T, c *cluster, _ string) {
		a, b := c.lab.Hosts[0], c.lab.Hosts[1]
		c.startAll()
		for _, h := range c.lab.Hosts {
			if log := c.agents[h.Name].Log(); !strings.Contains(log, `"linger": "1ms"`) {
				t.Errorf("%s: no linger of 1ms in the log:\n%s", h.Name, log)
			}
		}
		var ln net.Listener
		if err := b.Do(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(c.tunAddr(b), 0).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			defer s.Close()
			b := make([]byte, 1)
			for {
				if _, err := s.Read(b); err != nil {
					return
				}
				for until := time.Now().Add(200 * time.Microsecond); time.Now().Before(until); {
				}
				if _, err := s.Write(b); err != nil {
					return
				}
			}
		}()
		conn, err := a.DialContext(c.ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		const rounds = 300
		b1 := make([]byte, 1)
		for i := range rounds {
			if _, err := conn.Write([]byte{byte(i)}); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			if _, err := io.ReadFull(conn, b1); err != nil || b1[0] != byte(i) {
				t.Fatalf("round %d: echo %v, %v; want %d", i, b1, err, byte(i))
			}
		}
		// Most replies are picked up (264–295 of 300 here); a tenth is
		// the bound, for a loaded machine whose replies can miss the wait.
		hits := c.status(b).Counters["linger_hits"]
		t.Logf("%s: %d of %d replies picked up while lingering", b.Name, hits, rounds)
		if hits < rounds/10 {
			t.Errorf("%s: %d of %d replies picked up while lingering, want at least %d: %v", b.Name, hits, rounds, rounds/10, c.status(b).Counters)
		}
	})
}
