package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/api"
	"github.com/wikiflow/wikiflow/bridge"
	"github.com/wikiflow/wikiflow/ingest"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/lab/emulator"
	"github.com/wikiflow/wikiflow/lab/gen"
	"github.com/wikiflow/wikiflow/tui"
)

func runEmulator(ctx context.Context, args []string, getenv env, _, stderr io.Writer) error {
	var (
		c      common
		cfg    = emulator.DefaultConfig()
		source string
		gcount int
		grate  float64
		gseed  int64
	)
	f := newFlags("emulator", "Serve a Wikimedia EventStreams-compatible SSE feed on --addr: the bundled real recording\n(2,723 events) at its recorded pace times --speed, or generated events (--source gen).\nIt honours Last-Event-ID and ?since= like stream.wikimedia.org, and can inject faults.", `
Examples:
  wikiflow emulator                       # the recording at its real pace, once
  wikiflow emulator --loop --rebase       # an endless feed with current event times (what 'task up SOURCE=sample' runs)
  wikiflow emulator --source gen --gen-count 100000 --gen-rate 2000 --speed 1
  curl -N localhost:8090/v2/stream/recentchange`, getenv, stderr)
	c.flags(f, false)
	emulator.Flags(f, &cfg)
	f.String(&source, "source", "WIKIFLOW_EMULATOR_SOURCE", "recording", "what to serve: recording (the bundled real events) or gen (generated events)")
	f.Int(&gcount, "gen-count", "WIKIFLOW_GEN_COUNT", 100000, "with --source gen: number of events")
	f.Float64(&grate, "gen-rate", "WIKIFLOW_GEN_RATE", 100, "with --source gen: events per second at speed 1")
	f.Int64(&gseed, "gen-seed", "WIKIFLOW_GEN_SEED", 1, "with --source gen: random seed")
	if err := parse(f, args, func() error {
		if source != "recording" && source != "gen" {
			return fmt.Errorf("source: %q is not recording or gen", source)
		}
		if source == "gen" && (gcount <= 0 || grate <= 0) {
			return fmt.Errorf("gen-count and gen-rate must be positive")
		}
		return cfg.Validate()
	}); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	var src emulator.Source = emulator.RecordingSource()
	if source == "gen" {
		src = gen.NewSource(gen.DefaultProfile(), gseed, gcount, grate).WithStart(time.Now())
	}
	srv, err := emulator.New(cfg, src, log)
	if err != nil {
		return err
	}
	return serve(ctx, "emulator", srv, func() any { return srv.Stats() }, nil, &c, log)
}

// stage describes a pipeline stage for runStage: its help, its flags, its
// constructor, its counters (asked for obs.Degrader and obs.Readier) and its
// metrics for /metrics.
type stage[C any, S service, T any] struct {
	name, summary, usage string
	config               C
	flags                func(*cli.Flags, *C)
	validate             func(C) error
	build                func(C, *slog.Logger) (S, error)
	stats                func(S) T
	metrics              func(S) []prometheus.Collector
}

// runStage parses the stage's flags, builds it and serves it with its health
// server until ctx ends.
func runStage[C any, S service, T any](ctx context.Context, st stage[C, S, T], args []string, getenv env, stderr io.Writer) error {
	var c common
	cfg := st.config
	f := newFlags(st.name, st.summary, st.usage, getenv, stderr)
	c.flags(f, true)
	st.flags(f, &cfg)
	if err := parse(f, args, func() error { return st.validate(cfg) }); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	svc, err := st.build(cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, st.name, svc, func() any { return st.stats(svc) }, st.metrics(svc), &c, log)
}

func runIngest(ctx context.Context, args []string, getenv env, _, stderr io.Writer) error {
	defer tuneGC(getenv, copyGCPercent)()
	ingest.Version = buildVersion()
	return runStage(ctx, stage[ingest.Config, *ingest.Ingester, *ingest.Stats]{
		name:    "ingest",
		summary: "Read a Wikimedia EventStreams feed (SSE) and publish every event to Kafka: key = wiki,\nvalue = the raw JSON, headers = SSE id, meta.id and receipt time. It resumes from the\nposition stored in Kafka itself, reconnects with backoff and dead-letters bad events.\nIt runs with GOGC=400 and a soft 80 MiB memory limit unless the environment sets them.",
		usage: `
Examples:
  wikiflow ingest                                                  # the live Wikimedia feed (needs internet)
  wikiflow ingest --url http://127.0.0.1:8090/v2/stream/recentchange   # the local emulator (offline)
  wikiflow ingest --since 1h                                       # start an empty topic one hour back`,
		config:   ingest.DefaultConfig(),
		flags:    ingest.Flags,
		validate: ingest.Config.Validate,
		build:    ingest.New,
		stats:    (*ingest.Ingester).Stats,
		metrics:  (*ingest.Ingester).Collectors,
	}, args, getenv, stderr)
}

func runBridge(ctx context.Context, args []string, getenv env, _, stderr io.Writer) error {
	defer tuneGC(getenv, copyGCPercent)()
	return runStage(ctx, stage[bridge.Config, *bridge.Bridge, *bridge.Stats]{
		name:     "bridge",
		summary:  "Copy the Kafka topic into the NATS JetStream stream, one message per event on subject\nwikimedia.recentchange.<wiki>.<type>, deduplicated by meta.id. It recovers its Kafka position\nfrom the stream and fences a second bridge with expected-last-sequence publishes. It runs\nwith GOGC=400 and a soft 80 MiB memory limit unless the environment sets them.",
		config:   bridge.DefaultConfig(),
		flags:    bridge.Flags,
		validate: bridge.Config.Validate,
		build:    bridge.New,
		stats:    (*bridge.Bridge).Stats,
		metrics:  (*bridge.Bridge).Collectors,
	}, args, getenv, stderr)
}

// runAggregate runs the aggregate under softMemoryLimit: catching up, it holds two
// batches of messages (the one applied and the one read ahead), which would let
// the heap grow past 100 MiB.
func runAggregate(ctx context.Context, args []string, getenv env, _, stderr io.Writer) error {
	defer tuneGC(getenv, 0)()
	return runStage(ctx, stage[aggregate.Config, *aggregate.Aggregate, *aggregate.Stats]{
		name:    "aggregate",
		summary: "Count the events of the JetStream stream into Redis, exactly once: each batch is applied\nby one Lua script together with the consumer's watermark, then acknowledged. Memory stays\nunder a soft 80 MiB limit unless GOMEMLIMIT is set.",
		usage: `
Scale out with disjoint filter subjects, one consumer each:
  wikiflow aggregate --consumer agg-en --filter-subject 'wikimedia.recentchange.enwiki.>'`,
		config:   aggregate.DefaultConfig(),
		flags:    aggregate.Flags,
		validate: aggregate.Config.Validate,
		build:    aggregate.New,
		stats:    (*aggregate.Aggregate).Stats,
		metrics:  (*aggregate.Aggregate).Collectors,
	}, args, getenv, stderr)
}

func runAPI(ctx context.Context, args []string, getenv env, _, stderr io.Writer) error {
	var c common
	cfg := api.DefaultConfig()
	f := newFlags("api", "Serve the counters over HTTP: GET /stats (the original {\"stats\": {domain: count}} shape\nand more), /stats/timeseries, /stats/top/pages, /stats/top/editors, /stats/stream (SSE),\n/healthz, /readyz, /metrics and /openapi.json, and the live events from the JetStream log as\nWikimedia EventStreams serves them: /v2/stream/recentchange (SSE, resumable, filtered).", `
Examples:
  curl -s localhost:8080/stats
  curl -s 'localhost:8080/stats?window=5m&top=10&by=domain'
  curl -sN 'localhost:8080/v2/stream/recentchange?wiki=enwiki&type=edit'
  curl -s localhost:8080/openapi.json`, getenv, stderr)
	log, err := c.parseLogged(f, args, stderr, func(f *cli.Flags) { api.Flags(f, &cfg) }, func() error { return cfg.Validate() })
	if err != nil {
		return err
	}
	srv, err := api.New(cfg, log)
	if err != nil {
		return err
	}
	return serve(ctx, "api", srv, func() any { return nil }, nil, &c, log)
}

func runTUI(ctx context.Context, args []string, getenv env, _, stderr io.Writer) error {
	var c common
	cfg := tui.DefaultConfig()
	f := newFlags("tui", "A live terminal dashboard of Wikimedia edits, reading the API only.\nKeys: s sort, / filter, w window, p pause, r refresh, Enter detail, ? help, q quit.", "", getenv, stderr)
	c.flags(f, false)
	tui.Flags(f, &cfg)
	if err := parse(f, args, func() error { return cfg.Validate() }); err != nil {
		return err
	}
	// The dashboard owns the terminal: logs go to a file, never to the screen.
	lf, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer lf.Close()
	log, err := c.logger(lf)
	if err != nil {
		return err
	}
	d, err := tui.New(cfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

func runGen(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	var c common
	cfg := gen.DefaultConfig()
	f := newFlags("gen", "Generate schema-valid recentchange events with the wiki, type, bot and size mix of the\nreal recordings, deterministic for a seed, and write their ground truth (per-domain counts).", `
Examples:
  wikiflow gen --count 100000                          # straight into Kafka, as fast as possible
  wikiflow gen --count 1000 --out ndjson | jq .wiki
  wikiflow emulator --source gen --gen-count 100000    # served over SSE instead`, getenv, stderr)
	c.flags(f, false)
	gen.Flags(f, &cfg)
	if err := parse(f, args, func() error {
		if cfg.Out == gen.OutSSE {
			return fmt.Errorf("out: for sse, run 'wikiflow emulator --source gen'")
		}
		return cfg.Validate()
	}); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	return gen.Run(ctx, cfg, stdout, log)
}
