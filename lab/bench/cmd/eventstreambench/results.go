package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// latency summarises request or delivery times, in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(ms []float64) latency {
	if len(ms) == 0 {
		return latency{}
	}
	sort.Float64s(ms)
	return latency{N: len(ms), P50: bench.PercentileSorted(ms, 50), P99: bench.PercentileSorted(ms, 99), Max: ms[len(ms)-1]}
}

// results are the measured figures.
type results struct {
	Date           string  `json:"date"`
	Clients        int     `json:"clients"`
	Rate           float64 `json:"rate_events_per_s"`
	Seconds        float64 `json:"seconds"`
	RecordedEvents int     `json:"recorded_events_counted"`
	Published      int     `json:"published"`

	RSSAloneMB float64 `json:"rss_alone_mib"`
	RSSIdleMB  float64 `json:"rss_clients_idle_mib"`
	RSSPeakMB  float64 `json:"rss_clients_peak_mib"`
	RSSAfterMB float64 `json:"rss_after_clients_mib"`

	ConnectSeconds     float64 `json:"connect_seconds"`
	ExtraClientStatus  int     `json:"extra_client_status"`
	ClientsLeftSeconds float64 `json:"clients_left_seconds"`
	APICPUSeconds      float64 `json:"api_cpu_seconds"`
	CPUWallSeconds     float64 `json:"api_cpu_wall_seconds"`
	BenchCPUSeconds    float64 `json:"bench_cpu_seconds"`
	LoadAverage        string  `json:"load_average_1m"`
	CPUs               int     `json:"cpus"`

	StatsAlone latency `json:"stats_alone"`
	StatsWith  latency `json:"stats_with_clients"`
	Delivery   latency `json:"delivery"`

	MinReceived    int64   `json:"min_received"`
	MaxReceived    int64   `json:"max_received"`
	ClientsAll     int     `json:"clients_with_every_event"`
	ClientsFailed  int     `json:"clients_failed"`
	DeliverSeconds float64 `json:"deliver_seconds"`
}

// waitDelivered waits until every client read every published event (or d
// passes) and records what they read.
func (r *results) waitDelivered(clients []*sseClient, total int, d time.Duration) {
	start := time.Now()
	for {
		r.MinReceived, r.MaxReceived, r.ClientsAll, r.ClientsFailed = math.MaxInt64, 0, 0, 0
		for _, c := range clients {
			n := c.events.Load()
			r.MinReceived, r.MaxReceived = min(r.MinReceived, n), max(r.MaxReceived, n)
			if n == int64(total) {
				r.ClientsAll++
			}
			if c.failed.Load() != nil {
				r.ClientsFailed++
			}
		}
		if r.ClientsAll == len(clients) || time.Since(start) > d {
			r.DeliverSeconds = time.Since(start).Seconds()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *results) collectDelays(clients []*sseClient) {
	var all []float64
	for _, c := range clients {
		c.mu.Lock()
		all = append(all, c.delays...)
		c.mu.Unlock()
	}
	r.Delivery = summarize(all)
}

func (r *results) json() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### /v2/stream/recentchange: %d concurrent SSE clients\n\n", r.Clients)
	fmt.Fprintf(&b, "`go run ./lab/bench/cmd/eventstreambench -clients %d -rate %g -duration %gs` (%s): one `wikiflow api` process, "+
		"nats-server embedded in the benchmark, the real Redis holding the recording's %d events; "+
		"%d events published at %g/s while the clients are connected.\n\n",
		r.Clients, r.Rate, r.Seconds, r.Date, r.RecordedEvents, r.Published, r.Rate)
	b.WriteString("| figure | value |\n|---|---|\n")
	row := func(k, format string, args ...any) { fmt.Fprintf(&b, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	row("API RSS alone", "%.1f MiB", r.RSSAloneMB)
	row(fmt.Sprintf("API RSS, %d clients idle / peak while publishing", r.Clients), "%.1f / %.1f MiB (%.0f KiB per client)",
		r.RSSIdleMB, r.RSSPeakMB, (r.RSSPeakMB-r.RSSAloneMB)*1024/float64(r.Clients))
	row("API RSS after the clients left", "%.1f MiB (slots freed in %.1f s)", r.RSSAfterMB, r.ClientsLeftSeconds)
	row("client beyond the limit", "HTTP %d", r.ExtraClientStatus)
	row("GET /stats?window=1h&by=wiki&top=10 alone", "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d requests)", r.StatsAlone.P50, r.StatsAlone.P99, r.StatsAlone.Max, r.StatsAlone.N)
	row("the same with the clients, while publishing", "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d requests)", r.StatsWith.P50, r.StatsWith.P99, r.StatsWith.Max, r.StatsWith.N)
	row("events received per client", "min %d, max %d of %d; %d of %d clients got all; %d failed", r.MinReceived, r.MaxReceived, r.Published, r.ClientsAll, r.Clients, r.ClientsFailed)
	row("publish → client delay (every 10th client)", "p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.Delivery.P50, r.Delivery.P99, r.Delivery.Max)
	row("API CPU while publishing and delivering", "%.1f s in %.1f s (%.0f%% of one core)", r.APICPUSeconds, r.CPUWallSeconds, 100*r.APICPUSeconds/r.CPUWallSeconds)
	row("this program's CPU meanwhile (nats-server and the clients)", "%.1f s; machine: %d CPUs, load average %s", r.BenchCPUSeconds, r.CPUs, r.LoadAverage)
	row("time to connect the clients", "%.1f s", r.ConnectSeconds)
	return b.String()
}
