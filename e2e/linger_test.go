package e2e

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/feltnet/felt/router"
)

// TestLingerRequestResponse: one-byte TCP request/response between two
// hosts, every echo checked. The server host's agent writes each request
// into its TUN and, lingering, picks the server's reply up before it
// parks: its linger_hits count some. FELT_LINGER is 1 ms here, so that a
// reply on a loaded machine still comes within it; the agents' logs say
// the linger they run with.
func TestLingerRequestResponse(t *testing.T) {
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
			io.Copy(s, s)
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
		if hits := c.status(b).Counters["linger_hits"]; hits == 0 {
			t.Errorf("%s: no reply of %d picked up while lingering: %v", b.Name, rounds, c.status(b).Counters)
		}
	})
}
