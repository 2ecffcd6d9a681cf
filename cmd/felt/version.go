package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/feltnet/felt/cmd/felt/internal/version"
)

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("felt version", "", e.stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "felt %s %s %s/%s\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
