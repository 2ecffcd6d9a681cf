package router

import (
	"golang.zx2c4.com/wireguard/tun"

	"github.com/feltnet/felt/router/routertest"
)

// The agent passes felt's *tun.Device (asserted in agent); wireguard-go's
// tun.Device fits too, for a future wireguard backend. The fakes stand in
// for both sides.
var (
	_ Device = tun.Device(nil)
	_ Device = (*routertest.Device)(nil)
	_ Conn   = (*routertest.Conn)(nil)
	_ Device = (*routertest.Sink)(nil)
	_ Conn   = (*routertest.Sink)(nil)
)
