// Package version holds felt's version string, set at link time by the
// Makefile: -ldflags '-X github.com/feltnet/felt/cmd/felt/internal/version.Version=...'.
package version

// Version is "dev" in builds without the Makefile's -ldflags.
var Version = "dev"
