package router

import (
	"golang.zx2c4.com/wireguard/tun"

	"github.com/feltnet/felt/router/routertest"
)

// The agent passes a tun.Device as the Device; the fakes stand in for both.
var (
	_ Device = tun.Device(nil)
	_ Device = (*routertest.Device)(nil)
	_ Conn   = (*routertest.Conn)(nil)
	_ Device = (*routertest.Sink)(nil)
	_ Conn   = (*routertest.Sink)(nil)
)
