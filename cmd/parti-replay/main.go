// Command parti-replay rebuilds a parti group's state from its history — a
// live stream, an exported file, or a copy of a stopped server's store — and
// explains, compares, audits and replays it under another strategy. It only
// reads, except migrate, which starts a new group's stream from a group's
// final state and never writes to the old one.
//
// Run parti-replay --help for the commands, and parti-replay <command>
// --help for each command's flags and an example.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
