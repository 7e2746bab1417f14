// Command wikiflow is real-time analytics of Wikimedia edits: one binary with a
// subcommand per stage of the pipeline (emulator, ingest, bridge, aggregate, api,
// tui) and the tools around it (gen, replay, rebuild, status). Run
// `wikiflow help` for the list and `wikiflow <command> --help` for each.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wikiflow/wikiflow/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "wikiflow:", err)
		os.Exit(1)
	}
}
