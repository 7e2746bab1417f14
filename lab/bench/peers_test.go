package bench

import (
	"strings"
	"testing"
)

func samplePeers() *Peers {
	return &Peers{Events: 200000, Partitions: 3, Rounds: 3, Systems: []PeerResult{
		{Key: PeerWikiflow, Name: "wikiflow", Kind: PeerWikiflow, Guarantee: "exactly once", Rate: Summarize([]float64{40000, 50000, 60000}),
			CPUmsPer1k: Summarize([]float64{20, 22, 24}), PeakRSSMB: Summarize([]float64{40}),
			Checks: []CountCheck{{What: "per domain", Expected: 10, Counted: 10}, {What: "per domain", Expected: 10, Counted: 10}}},
		{Key: "python", Name: "python", Kind: PeerSystem, Guarantee: "at least once", Rate: Summarize([]float64{2000, 2500, 3000}),
			Checks: []CountCheck{{What: "per domain", Expected: 10, Counted: 12, Over: 2}, {What: "per domain", Expected: 10, Counted: 10}}},
		{Key: "kstreams", Name: "kafka streams", Kind: PeerSystem, Note: "Maven is offline"},
		{Key: FloorKafkaKey, Name: "kafka floor", Kind: PeerFloor, Rate: Summarize([]float64{200000})},
		{Key: "floor_redis", Name: "redis floor", Kind: PeerFloor, Rate: Summarize([]float64{100000})},
	}}
}

func TestPeersMarkdownRatios(t *testing.T) {
	md := samplePeers().Markdown()
	want := []string{
		"## wikiflow against the alternatives",
		"200,000 generated events in a 3-partition Kafka topic",
		// wikiflow: no ratio to itself, 50,000 / 200,000 of the floor.
		"| wikiflow | exactly once | 50,000 | 40,000 – 60,000 | — | 0.25× | 22.0 (20.0 – 24.0) | — | — | — | 40.0 | per domain: exact (2/2 runs exact) |",
		// python: 50,000 / 2,500 = 20×, 2,500 / 200,000 = 0.01×.
		"| python | at least once | 2,500 | 2,000 – 3,000 | 20.00× | 0.01× | — | — | — | — | — | per domain: over-count by 2 (1/2 runs exact) |",
		"| kafka streams | — | — | — | — | — | — | — | — | — | — | Maven is offline |",
		// The floors: no wikiflow ratio; the Kafka floor no ratio to itself.
		"| kafka floor | — | 200,000 | — | — | — | — | — | — | — | — | — |",
		"| redis floor | — | 100,000 | — | — | 0.50× | — | — | — | — | — | — |",
	}
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("missing %q in\n%s", w, md)
		}
	}
}

func TestPeersInResults(t *testing.T) {
	r := sampleResults()
	if strings.Contains(r.Markdown(), "against the alternatives") {
		t.Fatal("a run without peers shows the peers section")
	}
	r.Peers = samplePeers()
	if md := r.Markdown(); !strings.Contains(md, "## wikiflow against the alternatives") || strings.Index(md, "against the alternatives") > strings.Index(md, "## Method") {
		t.Error("the peers section is missing or after the method")
	}
}

func TestCompare(t *testing.T) {
	c := Compare("per domain", map[string]int64{"a": 3, "b": 2, "c": 1}, map[string]int64{"a": 4, "b": 1, "x": 2})
	want := CountCheck{What: "per domain", Expected: 6, Counted: 7, Over: 3, Under: 2}
	if c != want {
		t.Errorf("Compare = %+v, want %+v", c, want)
	}
	if s := c.String(); s != "over-count by 3, under-count by 2" {
		t.Errorf("String = %q", s)
	}
	if s := Compare("x", map[string]int64{"a": 1}, map[string]int64{"a": 1}).String(); s != "exact" {
		t.Errorf("exact check = %q", s)
	}
}
