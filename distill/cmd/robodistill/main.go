// Command robodistill is robodistill's offline tool: simulator rollouts and rendering,
// collection, labelling, reward and policy training, evaluation and benchmarks.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"robodistill/distill/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
