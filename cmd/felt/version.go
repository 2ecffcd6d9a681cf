package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"

	"github.com/feltnet/felt/cmd/felt/internal/version"
)

// cmdVersion is `felt version`; it has no flags.
func cmdVersion(*flag.FlagSet) action {
	return func(_ context.Context, e *env, _ []string) error { return printVersion(e) }
}

// printVersion is `felt version` and `felt agent --version` (flanneld's).
func printVersion(e *env) error {
	_, err := fmt.Fprintf(e.stdout, "felt %s %s %s/%s\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
