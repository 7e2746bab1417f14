package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

func sampleResults() *Results {
	return &Results{
		Run: "r1", Date: "2026-01-02T03:04:05Z", Mode: "full", TotalSeconds: 612,
		Machine:  Machine{CPUs: 2, CPUModel: "AMD EPYC 7B13", MemTotalBytes: 24 << 30, Kernel: "Linux 6.1"},
		Versions: Versions{Go: "go1.26.8", Kafka: "4.4.0", NATS: "v2.15.2", Redis: "7.0.15", Wikiflow: "dev"},
		Throughput: []Throughput{
			{Key: "aggregate", Name: "aggregate", Events: 200000, Rates: []float64{120000, 90000, 150000}, Seconds: []float64{1.6, 2.2, 1.3},
				Rate: Summarize([]float64{120000, 90000, 150000}), Target: TargetAggregate},
			{Key: "e2e", Name: "end to end", Events: 1000000, Rates: []float64{25000}, Seconds: []float64{40}, Rate: Summarize([]float64{25000}), Target: TargetEndToEnd},
			{Key: "ingest", Name: "ingest", Events: 200000, Rates: []float64{50000}, Seconds: []float64{4}, Rate: Summarize([]float64{50000})},
		},
		Freshness: []FreshnessResult{{Name: "live rate", Rate: 100, Seconds: 60, Events: 5800, DeliveredRate: 99.5, P50ms: 120, P99ms: 240.5, MaxMs: 300, PollMs: 2.2, TargetP99ms: TargetFreshP99ms}},
		Resources: []Resource{
			{Service: "ingest", Scenario: "backlog", PeakRSSMB: Summarize([]float64{30, 35}), CPUmsPer1k: Summarize([]float64{20, 22})},
			{Service: "bridge", Scenario: "backlog", PeakRSSMB: Summarize([]float64{120}), CPUmsPer1k: Summarize([]float64{30})},
			{Service: "api", Scenario: "load", PeakRSSMB: Summarize([]float64{40})},
		},
		API: []APIResult{
			{Path: "/stats", LoadResult: LoadResult{Tool: "wrk", Connections: 64, Seconds: 10, Requests: 300000, RPS: 30000, P50ms: 1.5, P99ms: 8}, PeakRSSMB: 40,
				TargetRPS: TargetStatsRPS, TargetP99ms: TargetStatsP99ms},
			{Path: "/stats?window=5m&top=50", LoadResult: LoadResult{Tool: "wrk", Connections: 64, Seconds: 10, Requests: 5000, RPS: 500, P50ms: 100, P99ms: 200}, PeakRSSMB: 41},
		},
		Notes: []string{"something happened"},
	}
}

func TestMarkdown(t *testing.T) {
	md := sampleResults().Markdown()
	want := []string{
		"# wikiflow benchmarks",
		"| CPUs (nproc) | 2 |",
		"| CPU model | AMD EPYC 7B13 |",
		"| Memory | 24,576 MiB |",
		"| Kafka | 4.4.0 |",
		"| aggregate ≥ 100,000 events/s | 120,000 events/s | ✓ |",
		"| end to end ≥ 30,000 events/s | 25,000 events/s | ✗ |",
		"| freshness p99 < 250 ms (live rate) | 240.5 ms | ✓ |",
		"| every service < 100 MiB resident | largest peak 120.0 MiB (bridge, backlog) | ✗ |",
		"| `/stats` ≥ 20,000 req/s with p99 < 10 ms | 30,000 req/s, p99 8.00 ms | ✓ |",
		"| aggregate | 200,000 | 3 | 120,000 | 90,000 – 150,000 | 1.6 | ≥ 100,000 ✓ |",
		"| ingest | 200,000 | 1 | 50,000 | — | 4.0 | — |",
		"| ingest | backlog | 32.5 | 30.0 – 35.0 | 21.0 | 20.0 – 22.0 | ✓ |",
		"| bridge | backlog | 120.0 | — | 30.0 | — | ✗ |",
		"| api | load | 40.0 | — | — | — | ✓ |",
		"| `/stats?window=5m&top=50` | wrk | 64 | 10.0 | 5,000 | 500 | 100.00 | 200.00 | 0 | 41.0 | — |",
		"| live rate | 100 events/s for 60 s | 100 | 5,800 | 120.0 | 240.5 | 300.0 | 2.2 | p99 < 250 ✓ |",
		"- something happened",
		"## Method",
		"## Reproduce",
		"go tool task bench",
	}
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("Markdown lacks %q", w)
		}
	}
	// ingest has no target: it must not appear among the targets.
	targets := md[strings.Index(md, "## Targets"):strings.Index(md, "## Throughput")]
	if strings.Contains(targets, "| ingest") {
		t.Errorf("a figure without a target is listed among the targets:\n%s", targets)
	}
}

func TestMarkdownEmptySections(t *testing.T) {
	md := (&Results{Run: "x", Mode: "quick"}).Markdown()
	for _, absent := range []string{"## Throughput", "## Freshness", "## API under load", "## Notes"} {
		if strings.Contains(md, absent) {
			t.Errorf("empty results render %q", absent)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sampleResults()
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Throughput[0].Rate.Median != 120000 || back.API[0].RPS != 30000 || back.Freshness[0].P99ms != 240.5 || back.Resources[0].PeakRSSMB.Max != 35 {
		t.Errorf("round trip lost values: %+v", back)
	}
	if !strings.Contains(string(b), `"p99_ms": 8`) {
		t.Errorf("JSON lacks the embedded load result fields:\n%s", b)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -12345: "-12,345"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}
