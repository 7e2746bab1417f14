// Command chaos runs the fault-injection run of package chaos against private
// brokers and writes its results (results.md and results.json, or with
// --topology cluster results-cluster.md and results-cluster.json) into --out.
// It exits non-zero when the run fails or any domain's count differs.
//
//	go build -o .wikiflow/bin/wikiflow ./cmd/wikiflow
//	go run ./lab/chaos/cmd/chaos --bin .wikiflow/bin/wikiflow --seed 42
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/lab/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	cfg := chaos.DefaultConfig()
	if topology(args) == "cluster" {
		cfg = chaos.ClusterConfig()
	}
	cfg.Bin = ".wikiflow/bin/wikiflow"
	var out string
	var timeout time.Duration
	f := cli.New("chaos", "Kill and restart every process and broker of the pipeline while it counts the bundled recording\nand generated events, then check that Redis holds every domain's count exactly once.", `
Examples:
  go tool task chaos                                   # build, then the full run
  go run ./lab/chaos/cmd/chaos --seed 42 --gen-count 20000 --kills 5
  go tool task chaos -- --topology cluster             # 3-node brokers, leaders killed`, os.Getenv, os.Stderr)
	chaos.Flags(f, &cfg)
	f.String(&out, "out", "WIKIFLOW_CHAOS_OUT", "lab/chaos", "folder for results.md and results.json (results-cluster.* with --topology cluster; empty = do not write them)")
	f.Duration(&timeout, "timeout", "WIKIFLOW_CHAOS_TIMEOUT", 15*time.Minute, "the whole run is stopped after this long")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	f.Problem(cfg.Validate())
	f.Check(timeout > 0, "timeout: must be positive")
	if err := f.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := chaos.Run(ctx, cfg)
	fmt.Print(rep.Summary())
	if out != "" {
		if werr := rep.Write(out); werr != nil {
			fmt.Fprintln(os.Stderr, "chaos:", werr)
			return 1
		}
		md, js := rep.Files()
		fmt.Printf("results written to %s/%s and %s\n", out, md, js)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	return 0
}

// topology returns the --topology the arguments give, else
// $WIKIFLOW_CHAOS_TOPOLOGY: the cluster run starts from its own defaults.
func topology(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "topology="); ok && strings.HasPrefix(a, "-") {
			return v
		}
		if (a == "--topology" || a == "-topology") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("WIKIFLOW_CHAOS_TOPOLOGY")
}
