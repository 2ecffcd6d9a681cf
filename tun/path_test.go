package tun

import "testing"

// Options is a stand-in until Create takes options.
type Options struct{}

func forEachPath(b *testing.B, f func(*testing.B, Options)) {
	b.Run("path=read-writev", func(b *testing.B) { f(b, Options{}) })
}

func configuredWith(t testing.TB, letter string, _ Options) (*Device, string) {
	return configured(t, letter)
}
