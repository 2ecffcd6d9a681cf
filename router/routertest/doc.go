// Package routertest holds in-memory fakes of the router's Device and Conn:
// a Network of Conns keyed by netip.AddrPort and a Device the test feeds and
// reads. Two whole engines can talk through them in an unprivileged test.
//
// The fakes copy each packet into buffers they reuse slot by slot, so steady
// traffic through them allocates nothing and testing.AllocsPerRun can see
// the engine's own allocations. They do not import router: they satisfy its
// interfaces structurally.
package routertest
