// Command felt is the CLI over felt's libraries: one file per command, each
// turning flags into a typed config and making one library call.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// main is the only place that exits.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, agentArgs(os.Args[0], os.Args[1:]), newEnv(os.Stdin, os.Stdout, os.Stderr))
	stop()
	os.Exit(code)
}
