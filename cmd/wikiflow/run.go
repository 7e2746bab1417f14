package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/obs"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it
// comes from the module's build information.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// env is how commands read the environment.
type env func(string) string

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"emulator", "serve the bundled recording (or generated load) as a Wikimedia EventStreams SSE feed", runEmulator},
		{"ingest", "read the EventStreams feed and publish every event to Kafka", runIngest},
		{"bridge", "copy the Kafka topic into the NATS JetStream stream", runBridge},
		{"aggregate", "count the JetStream events into Redis, exactly once", runAggregate},
		{"api", "serve the counters over HTTP (GET /stats and more)", runAPI},
		{"tui", "live terminal dashboard over the API", runTUI},
		{"gen", "generate realistic events (to Kafka, NDJSON or SSE) with their ground truth", runGen},
		{"replay", "read history back from JetStream (NDJSON, table or SSE)", runReplay},
		{"rebuild", "rebuild the counters from the JetStream log and switch to them atomically", runRebuild},
		{"stack", "start, check and stop the brokers and stages on this machine (up, down, status, logs, ...)", runStack},
		{"status", "show the log's retention and range, the consumers and the projection", runStatus},
		{"version", "print the version", func(_ context.Context, _ []string, _ env, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "wikiflow", buildVersion())
			return nil
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `wikiflow: real-time analytics of Wikimedia edits.

  Wikimedia EventStreams ──► ingest ──► Kafka ──► bridge ──► JetStream ──► aggregate ──► Redis ──► api ──► tui

Usage: wikiflow <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag has an environment variable (shown by --help) and a default that fits
the local stack started by 'go tool task up'. Examples:

  wikiflow emulator --speed 10                 # a fast offline feed on :8090
  wikiflow ingest --url http://127.0.0.1:8090/v2/stream/recentchange
  wikiflow replay --since 10m --wiki enwiki --format table
  wikiflow tui --refresh 1s
`)
}

func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return nil
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	names := make([]string, 0)
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return fmt.Errorf("unknown command %q; commands: %s", name, strings.Join(names, ", "))
}

// common holds the flags every long-running command has.
type common struct {
	logLevel, logFormat, healthAddr string
}

func (c *common) flags(f *cli.Flags, health bool) {
	f.String(&c.logLevel, "log-level", "WIKIFLOW_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	f.String(&c.logFormat, "log-format", "WIKIFLOW_LOG_FORMAT", "text", "log format: text or json")
	if health {
		f.String(&c.healthAddr, "health-addr", "WIKIFLOW_HEALTH_ADDR", "", "serve GET /healthz, /readyz and /metrics on this address (empty = off)")
	}
}

// parse parses args, then runs validate and reports every problem at once.
func parse(f *cli.Flags, args []string, validate func() error) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if validate != nil {
		f.Problem(validate())
	}
	if len(f.Args()) > 0 {
		f.Check(false, "unexpected arguments: %s", strings.Join(f.Args(), " "))
	}
	return f.Err()
}

// parseLogged registers the common flags (without health) and the command's own
// (register), parses args, validates them and returns the command's logger.
func (c *common) parseLogged(f *cli.Flags, args []string, stderr io.Writer, register func(*cli.Flags), validate func() error) (*slog.Logger, error) {
	c.flags(f, false)
	register(f)
	if err := parse(f, args, validate); err != nil {
		return nil, err
	}
	return c.logger(stderr)
}

// logger returns the command's logger, which also receives go-redis's own lines.
func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	log, err := obs.NewLogger(w, c.logLevel, c.logFormat)
	if err != nil {
		return nil, err
	}
	brokers.RouteRedisLogs(log)
	return log, nil
}

// service is a stage that runs until its context ends.
type service interface {
	Run(ctx context.Context) error
}

// serve runs svc together with its health server; when either stops with an
// error, the other is stopped too. The health server asks svc and the value
// stats returns for obs.Degrader and obs.Readier (see obs.Stage), and its
// /metrics serves metrics with the Go runtime and process collectors, in a
// registry of the process's own.
func serve(ctx context.Context, component string, svc service, stats func() any, metrics []prometheus.Collector, c *common, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	sctx, cancel := context.WithCancel(gctx)
	g.Go(func() error {
		defer cancel()
		return svc.Run(gctx)
	})
	st := obs.Stage{Component: component, Value: svc, Stats: stats, Metrics: obs.NewRegistry(metrics...)}
	g.Go(func() error { return obs.HealthServer(sctx, c.healthAddr, st, log) })
	log.Info("started", "component", component, "version", buildVersion())
	err := g.Wait()
	if err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	log.Info("stopped", "component", component)
	return nil
}

func newFlags(name, summary, extra string, getenv env, stderr io.Writer) *cli.Flags {
	return cli.New(name, summary, extra, getenv, stderr)
}
