// Command wfbench measures wikiflow end to end: every stage as a real process against
// the real brokers (throughput, freshness, peak memory, CPU per event), the API under
// load and a rebuild, then writes BENCHMARKS.md and lab/bench/results.json. Run it with
// `go tool task bench` (BENCH_QUICK=1 for a short run).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/lab/bench"
)

// options are the harness's settings.
type options struct {
	bin, natsServer           string
	abBin                     string
	peerSystems               string
	kafka, redisURL           string
	outMD, outJSON            string
	quick                     bool
	reps                      int
	stageN                    int
	e2eN, e2eRepN             int
	e2eReps                   int
	freshLive                 time.Duration
	freshHigh                 time.Duration
	liveRate                  float64
	highRate                  float64
	apiFor                    time.Duration
	only                      string
	keepTmp, noReport, render bool
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func main() {
	var o options
	fs := flag.NewFlagSet("wfbench", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: wfbench [flags]

Measure wikiflow with real processes against the running brokers (go tool task infra)
and write BENCHMARKS.md and lab/bench/results.json. Every run uses its own Kafka topics,
its own nats-server (free port, temporary store), its own Redis keys and removes them.

Flags:
`)
		fs.PrintDefaults()
	}
	quickEnv := os.Getenv("BENCH_QUICK")
	fs.BoolVar(&o.quick, "quick", quickEnv != "" && quickEnv != "0" && quickEnv != "false", "small N and one repetition (env BENCH_QUICK=1)")
	fs.StringVar(&o.bin, "bin", ".wikiflow/bin/wikiflow", "the wikiflow binary to measure")
	fs.StringVar(&o.abBin, "ab-bin", "", "a second wikiflow binary (an older build): the peers comparison runs it right after --bin in every round, as the system wikiflow-b")
	fs.StringVar(&o.peerSystems, "peer-systems", "", "comma-separated keys of the peers comparison's systems to run (wikiflow, wikiflow-b, floor_nats, python, benthos, benthos_t8, kstreams, floor_kafka, floor_redis; default all)")
	fs.StringVar(&o.natsServer, "nats-server", ".wikiflow/bin/nats-server", "the nats-server binary to run privately")
	fs.StringVar(&o.kafka, "kafka", brokers.DefaultKafka, "Kafka bootstrap broker")
	fs.StringVar(&o.redisURL, "redis-url", brokers.DefaultRedis, "Redis URL")
	fs.StringVar(&o.outMD, "out-md", "BENCHMARKS.md", "Markdown report to write")
	fs.StringVar(&o.outJSON, "out-json", "lab/bench/results.json", "JSON results to write")
	fs.IntVar(&o.reps, "reps", 0, "repetitions of the per-stage and end-to-end runs (default 3, quick 1; env BENCH_REPS)")
	fs.IntVar(&o.stageN, "stage-n", 0, "events of each per-stage run (default 200000, quick 20000; env BENCH_STAGE_N)")
	fs.IntVar(&o.e2eN, "e2e-n", 0, "events of the single large end-to-end run (default 1000000, quick 50000; env BENCH_E2E_N)")
	fs.IntVar(&o.e2eRepN, "e2e-rep-n", 0, "events of each repeated end-to-end run (default 200000; none in quick mode; env BENCH_E2E_REP_N)")
	fs.DurationVar(&o.freshLive, "fresh-live", 0, "freshness run at live rate (default 60s, quick 10s)")
	fs.DurationVar(&o.freshHigh, "fresh-high", 0, "freshness run at high rate (default 30s, quick 8s)")
	fs.Float64Var(&o.liveRate, "live-rate", 100, "live rate, events/s")
	fs.Float64Var(&o.highRate, "high-rate", 10000, "high rate, events/s")
	fs.DurationVar(&o.apiFor, "api-duration", 0, "duration of each API load test (default 10s, quick 3s)")
	fs.StringVar(&o.only, "only", "", "comma-separated subset of: stages,e2e,fresh,api,rebuild,peers (default all)")
	fs.BoolVar(&o.keepTmp, "keep-tmp", false, "keep the temporary folder (logs of every process)")
	fs.BoolVar(&o.noReport, "no-report", false, "print the results only; do not write BENCHMARKS.md and results.json")
	fs.BoolVar(&o.render, "render", false, "measure nothing: write BENCHMARKS.md again from the results file (--out-json) and the reports of other runs")
	_ = fs.Parse(os.Args[1:])
	o.defaults()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "wfbench:", err)
		os.Exit(1)
	}
}

func (o *options) defaults() {
	pick := func(v *int, env string, full, quick int) {
		if *v <= 0 {
			d := full
			if o.quick {
				d = quick
			}
			*v = envInt(env, d)
		}
	}
	pick(&o.reps, "BENCH_REPS", 3, 1)
	pick(&o.stageN, "BENCH_STAGE_N", 200000, 20000)
	pick(&o.e2eN, "BENCH_E2E_N", 1000000, 50000)
	pick(&o.e2eRepN, "BENCH_E2E_REP_N", 200000, 0)
	if o.quick && os.Getenv("BENCH_E2E_REP_N") == "" {
		o.e2eRepN = 0
	}
	o.e2eReps = o.reps
	dur := func(v *time.Duration, full, quick time.Duration) {
		if *v <= 0 {
			*v = full
			if o.quick {
				*v = quick
			}
		}
	}
	dur(&o.freshLive, 60*time.Second, 10*time.Second)
	dur(&o.freshHigh, 30*time.Second, 8*time.Second)
	dur(&o.apiFor, 10*time.Second, 3*time.Second)
}

func (o options) want(part string) bool {
	if o.only == "" {
		return true
	}
	for _, p := range strings.Split(o.only, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

// runID returns a short unique id: UTC time and 4 random hex digits.
func runID() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102t150405") + "r" + hex.EncodeToString(b[:])
}

func run(ctx context.Context, o options) error {
	if o.render {
		return render(o)
	}
	for _, p := range []*string{&o.bin, &o.natsServer, &o.abBin} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: %w (build it with go tool task build / go tool task tools)", abs, err)
		}
		*p = abs
	}
	h, err := newHarness(ctx, o)
	if err != nil {
		return err
	}
	defer h.cleanup()
	if err := h.all(ctx); err != nil {
		return err
	}
	if o.noReport {
		b, _ := h.res.JSON()
		os.Stdout.Write(b)
		return nil
	}
	res := h.res
	switch {
	case o.only == "peers":
		res = mergePeers(o.outJSON, res, h.logf)
	case !o.want("peers"):
		keepPeers(o.outJSON, res, h.logf)
	}
	b, err := res.JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.outJSON), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.outJSON, b, 0o644); err != nil {
		return err
	}
	if err := writeMarkdown(o.outMD, res); err != nil {
		return err
	}
	h.logf("wrote %s and %s", o.outMD, o.outJSON)
	return nil
}

// writeMarkdown writes the report of res to path, followed by the reports of other runs.
func writeMarkdown(path string, res *bench.Results) error {
	md, err := bench.AppendMeasured(res.Markdown(), ".", bench.MeasuredElsewhere)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// render writes BENCHMARKS.md again from a results file, measuring nothing.
// mergePeers returns the results in path (an earlier run) with their peers
// replaced by those of cur, so that a peers-only run keeps the rest of the report;
// without earlier results it returns cur.
func mergePeers(path string, cur *bench.Results, logf func(string, ...any)) *bench.Results {
	b, err := os.ReadFile(path)
	if err != nil {
		logf("no earlier results to keep (%v): the report holds only the peers", err)
		return cur
	}
	var prev bench.Results
	if err := json.Unmarshal(b, &prev); err != nil {
		logf("earlier results %s are unreadable (%v): the report holds only the peers", path, err)
		return cur
	}
	if cur.Peers != nil {
		cur.Peers.Run, cur.Peers.Date = cur.Run, cur.Date
		cur.Peers.Systems = mergeSystems(cur.Peers.Systems, prev.Peers)
	}
	prev.Peers = cur.Peers
	for _, n := range cur.Notes {
		prev.Notes = append(prev.Notes, "peers run "+cur.Run+": "+n)
	}
	logf("kept the other figures of run %s (%s) in the report", prev.Run, prev.Date)
	return &prev
}

// mergeSystems returns the systems of a peers run followed by those of the
// earlier peers (prev, possibly nil) that it did not measure (a run with
// --peer-systems), each noted with the run that measured it.
func mergeSystems(cur []bench.PeerResult, prev *bench.Peers) []bench.PeerResult {
	if prev == nil {
		return cur
	}
	have := map[string]bool{}
	for _, s := range cur {
		have[s.Key] = true
	}
	for _, s := range prev.Systems {
		if have[s.Key] || s.Key == bench.PeerWikiflowB {
			continue
		}
		if s.Rate.N > 0 && prev.Run != "" {
			note := "measured in the earlier run " + prev.Run + " (" + prev.Date + "), not in this one"
			if s.Note != "" {
				note += "; " + s.Note
			}
			s.Note = note
		}
		cur = append(cur, s)
	}
	return cur
}

// keepPeers gives res, a run that did not measure the peers, the peers of the
// results in path (an earlier run), so that the report keeps them.
func keepPeers(path string, res *bench.Results, logf func(string, ...any)) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var prev bench.Results
	if err := json.Unmarshal(b, &prev); err != nil || prev.Peers == nil {
		return
	}
	if prev.Peers.Run == "" {
		prev.Peers.Run, prev.Peers.Date = prev.Run, prev.Date
	}
	res.Peers = prev.Peers
	logf("kept the peers of run %s (%s) in the report", prev.Peers.Run, prev.Peers.Date)
}

func render(o options) error {
	b, err := os.ReadFile(o.outJSON)
	if err != nil {
		return fmt.Errorf("results to render: %w", err)
	}
	var res bench.Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("results to render: %s: %w", o.outJSON, err)
	}
	if err := writeMarkdown(o.outMD, &res); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wfbench: wrote %s from %s\n", o.outMD, o.outJSON)
	return nil
}
