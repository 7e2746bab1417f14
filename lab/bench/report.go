package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Results is everything one benchmark run measured; lab/bench/results.json holds it.
type Results struct {
	// Run is the run's unique id (also part of every topic, stream and key it used).
	Run string `json:"run"`
	// Date is the start of the run, RFC 3339 UTC.
	Date string `json:"date"`
	// Mode is "full" or "quick" (BENCH_QUICK=1).
	Mode string `json:"mode"`
	// TotalSeconds is the wall time of the whole run.
	TotalSeconds float64 `json:"total_seconds"`
	// Machine describes the host.
	Machine Machine `json:"machine"`
	// Versions are those of the toolchain and brokers.
	Versions Versions `json:"versions"`
	// Throughput holds the per-stage, end-to-end and rebuild rates.
	Throughput []Throughput `json:"throughput"`
	// Freshness holds receipt-to-visibility delays.
	Freshness []FreshnessResult `json:"freshness"`
	// Resources holds peak memory and CPU per service and scenario.
	Resources []Resource `json:"resources"`
	// API holds the HTTP load tests.
	API []APIResult `json:"api"`
	// Peers compares wikiflow with other systems on the same backlog (--only peers).
	Peers *Peers `json:"peers,omitempty"`
	// Notes are remarks of the harness (fallbacks taken, runs that did not finish).
	Notes []string `json:"notes,omitempty"`
}

// Machine describes the host the benchmark ran on.
type Machine struct {
	CPUs          int    `json:"cpus"`
	CPUModel      string `json:"cpu_model"`
	MemTotalBytes int64  `json:"mem_total_bytes"`
	Kernel        string `json:"kernel"`
}

// Versions are the versions of the software measured.
type Versions struct {
	Go       string `json:"go"`
	Kafka    string `json:"kafka"`
	NATS     string `json:"nats"`
	Redis    string `json:"redis"`
	Wikiflow string `json:"wikiflow"`
}

// Throughput is a rate measured over one or more repetitions.
type Throughput struct {
	// Key identifies the figure: ingest, bridge, aggregate, e2e, e2e_reps, rebuild.
	Key string `json:"key"`
	// Name is the human-readable description.
	Name string `json:"name"`
	// Events is the number of events of each repetition.
	Events int64 `json:"events"`
	// Rates are the events/s of each repetition.
	Rates []float64 `json:"rates"`
	// Seconds are the measured durations of each repetition.
	Seconds []float64 `json:"seconds"`
	// Rate summarises Rates.
	Rate Summary `json:"rate"`
	// Target is the events/s the figure should reach (0: none).
	Target float64 `json:"target,omitempty"`
}

// FreshnessResult is the receipt-to-visibility delay at one input rate.
type FreshnessResult struct {
	// Name describes the scenario.
	Name string `json:"name"`
	// Rate is the offered input rate, events/s.
	Rate float64 `json:"rate"`
	// Seconds is how long the input lasted.
	Seconds float64 `json:"seconds"`
	// Events is the number of events whose delay was measured.
	Events int `json:"events"`
	// P50ms, P99ms and MaxMs are delay percentiles in milliseconds.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// DeliveredRate is the rate the pipeline actually made events visible: events
	// visible divided by the time from the first receipt to the last visibility.
	DeliveredRate float64 `json:"delivered_rate"`
	// PollMs is the mean interval between two reads of the projection.
	PollMs float64 `json:"poll_ms"`
	// TargetP99ms is the p99 the scenario should stay under (0: none).
	TargetP99ms float64 `json:"target_p99_ms,omitempty"`
}

// Resource is the peak memory and CPU cost of one service in one scenario.
type Resource struct {
	Service  string `json:"service"`
	Scenario string `json:"scenario"`
	// PeakRSSMB summarises VmHWM in MiB over the repetitions.
	PeakRSSMB Summary `json:"peak_rss_mb"`
	// CPUmsPer1k summarises (utime+stime) per 1,000 events in ms (N = 0: not applicable).
	CPUmsPer1k Summary `json:"cpu_ms_per_1k_events"`
}

// APIResult is a load test of one API path.
type APIResult struct {
	Path string `json:"path"`
	LoadResult
	// PeakRSSMB is the api process's VmHWM after the test, MiB.
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// TargetRPS and TargetP99ms are the goals for this path (0: none).
	TargetRPS   float64 `json:"target_rps,omitempty"`
	TargetP99ms float64 `json:"target_p99_ms,omitempty"`
}

// Targets of the project, shown next to each figure.
const (
	TargetAggregate   = 100000.0 // events/s
	TargetEndToEnd    = 30000.0  // events/s sustained
	TargetFreshP99ms  = 250.0    // ms, at live rate
	TargetRSSMB       = 100.0    // MiB per service
	TargetStatsRPS    = 20000.0  // req/s on /stats
	TargetStatsP99ms  = 10.0     // ms on /stats
	TargetRebuildRate = 100000.0 // events/s
)

// JSON returns the results as indented JSON.
func (r *Results) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// num formats a number with thousands separators and no decimals.
func num(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	neg := x < 0
	s := fmt.Sprintf("%.0f", math.Abs(x))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func dec(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

func spread(s Summary, f func(float64) string) string {
	if s.N <= 1 {
		return "—"
	}
	return f(s.Min) + " – " + f(s.Max)
}

// Markdown renders the results as the BENCHMARKS.md document.
func (r *Results) Markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# wikiflow benchmarks\n\n")
	w("Generated by `go tool task bench` (lab/bench/cmd/wfbench) on %s, %s mode, in %s s; run id `%s`. ", r.Date, r.Mode, num(r.TotalSeconds), r.Run)
	w("Every figure comes from the real `wikiflow` binary running as separate processes against real Kafka, NATS JetStream and Redis on this one machine; ")
	w("repeated figures show the median and the spread (min – max). The raw numbers are in `lab/bench/results.json`.\n\n")

	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPUs (nproc) | %d |\n| CPU model | %s |\n| Memory | %s MiB |\n| Kernel | %s |\n", r.Machine.CPUs, r.Machine.CPUModel, num(float64(r.Machine.MemTotalBytes)/(1<<20)), r.Machine.Kernel)
	w("| Go | %s |\n| Kafka | %s |\n| NATS server | %s |\n| Redis | %s |\n| wikiflow | %s |\n\n", r.Versions.Go, r.Versions.Kafka, r.Versions.NATS, r.Versions.Redis, r.Versions.Wikiflow)

	r.mdTargets(w)
	r.mdThroughput(w)
	r.mdFreshness(w)
	r.mdResources(w)
	r.mdAPI(w)
	if r.Peers != nil {
		b.WriteString(r.Peers.Markdown())
	}
	if len(r.Notes) > 0 {
		w("## Notes of this run\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
		w("\n")
	}
	b.WriteString(methodText)
	return b.String()
}

// mdWriter appends formatted text to a document.
type mdWriter func(format string, a ...any)

// mdTargets writes the table of targets, each with its measured figure.
func (r *Results) mdTargets(w mdWriter) {
	w("## Targets\n\n| Target | Measured | |\n|---|---|---|\n")
	for _, t := range r.Throughput {
		if t.Target > 0 && t.Rate.N > 0 {
			w("| %s ≥ %s events/s | %s events/s | %s |\n", t.Name, num(t.Target), num(t.Rate.Median), mark(t.Rate.Median >= t.Target))
		}
	}
	for _, f := range r.Freshness {
		if f.TargetP99ms > 0 && f.Events > 0 {
			w("| freshness p99 < %s ms (%s) | %s ms | %s |\n", num(f.TargetP99ms), f.Name, dec(f.P99ms, 1), mark(f.P99ms < f.TargetP99ms))
		}
	}
	if len(r.Resources) > 0 {
		worst, who := 0.0, ""
		for _, x := range r.Resources {
			if x.PeakRSSMB.Max > worst {
				worst, who = x.PeakRSSMB.Max, x.Service+", "+x.Scenario
			}
		}
		w("| every service < %s MiB resident | largest peak %s MiB (%s) | %s |\n", num(TargetRSSMB), dec(worst, 1), who, mark(worst < TargetRSSMB))
	}
	for _, a := range r.API {
		if a.TargetRPS > 0 {
			w("| `%s` ≥ %s req/s with p99 < %s ms | %s req/s, p99 %s ms | %s |\n", a.Path, num(a.TargetRPS), num(a.TargetP99ms), num(a.RPS), dec(a.P99ms, 2),
				mark(a.RPS >= a.TargetRPS && a.P99ms < a.TargetP99ms && a.Errors == 0))
		}
	}
	w("\nWhere a target is missed, [docs/performance.md](docs/performance.md) shows the profiles that explain why and what it would need.\n\n")
}

// mdTable writes a section of n rows: head, each row, then tail; nothing when n
// is 0.
func mdTable(w mdWriter, n int, head, tail string, row func(i int)) {
	if n == 0 {
		return
	}
	w("%s", head)
	for i := range n {
		row(i)
	}
	w("%s", tail)
}

// targetCell is a table's target column: text when the row has a target, else
// a dash.
func targetCell(has bool, text string) string {
	if !has {
		return "—"
	}
	return text
}

// mdThroughput writes the throughput table, if there are such results.
func (r *Results) mdThroughput(w mdWriter) {
	mdTable(w, len(r.Throughput), "## Throughput\n\n| Measurement | Events per run | Runs | events/s (median) | spread (min – max) | seconds (median) | target |\n|---|---:|---:|---:|---:|---:|---|\n", "\n", func(i int) {
		t := r.Throughput[i]
		tg := targetCell(t.Target > 0 && t.Rate.N > 0, "≥ "+num(t.Target)+" "+mark(t.Rate.Median >= t.Target))
		w("| %s | %s | %d | %s | %s | %s | %s |\n", t.Name, num(float64(t.Events)), t.Rate.N, num(t.Rate.Median), spread(t.Rate, num), dec(Summarize(t.Seconds).Median, 1), tg)
	})
}

// mdFreshness writes the freshness table, if there are such results.
func (r *Results) mdFreshness(w mdWriter) {
	mdTable(w, len(r.Freshness), "## Freshness (receipt in ingest → visible in Redis)\n\n| Scenario | Input | Delivered events/s | Events measured | p50 ms | p99 ms | max ms | poll interval ms | target |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n",
		"\nWhen the delivered rate is below the input rate, the pipeline cannot keep up: a backlog grows during the run and the delays measure it.\n\n", func(i int) {
			f := r.Freshness[i]
			tg := targetCell(f.TargetP99ms > 0 && f.Events > 0, "p99 < "+num(f.TargetP99ms)+" "+mark(f.P99ms < f.TargetP99ms))
			w("| %s | %s events/s for %s s | %s | %s | %s | %s | %s | %s | %s |\n", f.Name, num(f.Rate), num(f.Seconds), num(f.DeliveredRate), num(float64(f.Events)), dec(f.P50ms, 1), dec(f.P99ms, 1), dec(f.MaxMs, 1), dec(f.PollMs, 1), tg)
		})
}

// mdResources writes the memory and CPU table, if there are such results.
func (r *Results) mdResources(w mdWriter) {
	head := "## Memory and CPU per service\n\nPeak RSS is VmHWM of `/proc/<pid>/status` read when the measurement ends; CPU is utime+stime of `/proc/<pid>/stat` over the whole process life divided by the events it handled.\n\n" +
		"| Service | Scenario | Peak RSS MiB (median) | spread | CPU ms / 1,000 events (median) | spread | < " + num(TargetRSSMB) + " MiB |\n|---|---|---:|---:|---:|---:|---|\n"
	dec1 := func(v float64) string { return dec(v, 1) }
	mdTable(w, len(r.Resources), head, "\n", func(i int) {
		x := r.Resources[i]
		cpu, cs := "—", "—"
		if x.CPUmsPer1k.N > 0 {
			cpu, cs = dec1(x.CPUmsPer1k.Median), spread(x.CPUmsPer1k, dec1)
		}
		w("| %s | %s | %s | %s | %s | %s | %s |\n", x.Service, x.Scenario, dec1(x.PeakRSSMB.Median), spread(x.PeakRSSMB, dec1), cpu, cs, mark(x.PeakRSSMB.Max < TargetRSSMB))
	})
}

// mdAPI writes the table of the API under load, if there are such results.
func (r *Results) mdAPI(w mdWriter) {
	mdTable(w, len(r.API), "## API under load\n\n| Path | Tool | Connections | Seconds | Requests | req/s | p50 ms | p99 ms | errors | api peak RSS MiB | target |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n", "\n", func(i int) {
		a := r.API[i]
		tg := targetCell(a.TargetRPS > 0, "≥ "+num(a.TargetRPS)+" req/s, p99 < "+num(a.TargetP99ms)+" ms "+mark(a.RPS >= a.TargetRPS && a.P99ms < a.TargetP99ms && a.Errors == 0))
		w("| `%s` | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", a.Path, a.Tool, a.Connections, dec(a.Seconds, 1), num(float64(a.Requests)), num(a.RPS), dec(a.P50ms, 2), dec(a.P99ms, 2), num(float64(a.Errors)), dec(a.PeakRSSMB, 1), tg)
	})
}

const methodText = `## Method

Each measurement starts fresh: a new Kafka topic ` + "`bench_<run>_<case>`" + ` (3 partitions), a private
` + "`nats-server -js`" + ` on a free port with its store in a temporary folder (the stream's subjects are fixed, so
the bench never shares a server with the stack's stream ` + "`WIKIMEDIA`" + `), a stream ` + "`BENCH_<RUN>_<CASE>`" + ` and a
Redis base name ` + "`bench_<run>_<case>`" + `. Every service runs as its own ` + "`wikiflow`" + ` process with default
settings and ` + "`--health-addr`" + ` on a free port. Everything is removed afterwards.

- **ingest**: ` + "`wikiflow emulator --source gen --gen-count N --speed 0`" + ` → ingest → Kafka. Rate = events
  published between the first and the last poll (every 10 ms) of ingest's ` + "`wikiflow_ingest_events_published_total`" + `.
- **bridge**: a Kafka backlog of N events written by ` + "`wikiflow gen --out kafka`" + `, then bridge → JetStream.
  Rate = messages stored between the first message and the N-th (stream info polled every 10 ms).
- **aggregate**: the bridge's stream of N events, then aggregate → Redis. Rate = sequences applied between the
  first and the last poll (every 10 ms) of the watermark ` + "`{base}:ns:live:wm`" + ` until it reaches the stream's last sequence.
- **end to end**: emulator (gen, speed 0) → ingest → bridge → aggregate all running at once. Rate = N divided by
  the time from the first event received by ingest (first non-zero ` + "`wikiflow_ingest_frames_read_total`" + `, polled every
  10 ms) to the moment Redis's ` + "`{base}:ns:live:meta`" + ` field ` + "`events`" + ` reaches N.
- **freshness**: the emulator paces generated events at the given rate through the whole pipeline. A poller
  reads ` + "`events`" + ` of ` + "`{base}:ns:live:meta`" + ` every 2 ms and records when each count became visible. Afterwards
  the stream is read in order and each message's ` + "`Wikiflow-Received`" + ` header (ingest's receipt time, the
  Kafka header ` + "`received-ns`" + ` carried over by the bridge) is taken; event i is visible at the first poll
  that saw ` + "`events ≥ i`" + `. The delay is that poll's time minus the receipt time. Resolution: the poll
  interval (column "poll interval", a Redis round trip plus ~2 ms) — each delay is an upper bound by at most
  that much. The events received in the first 2 s are left out as warm-up. All clocks are the same host clock.
- **memory and CPU**: VmHWM and utime+stime of each process, read from /proc just before it is stopped.
- **API**: ` + "`wikiflow api`" + ` over the end-to-end run's projection, loaded by ` + "`wrk --latency`" + ` (or, without wrk,
  the Go load generator of lab/bench/load.go: one goroutine per keep-alive connection) with 64 connections.
  The load generator runs on the same machine and competes with the api for the CPUs.
- **rebuild**: ` + "`wikiflow rebuild`" + ` of the end-to-end run's stream against its projection (the live aggregate's
  watermark), wall time of the whole command (replay, comparison, switch). Rate = events / wall time.

## Reproduce

` + "```" + `sh
go tool task bench                 # full run (about 10-15 minutes), rewrites BENCHMARKS.md and lab/bench/results.json
BENCH_QUICK=1 go tool task bench   # quick run: small N, one repetition (2-3 minutes)
go run ./lab/bench/cmd/wfbench --help  # the harness alone (expects the brokers of 'go tool task infra')
` + "```" + `
`
