package ingest

import (
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

func TestCollectorsShowEveryCounterAndPassPromtool(t *testing.T) {
	in, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := obs.MetricsHandler(obs.NewRegistry(in.Collectors()...))
	promtooltest.Exposed(t, "ingest", in.Stats(), h, map[string]float64{"LastEventTime": 1e3, "LastReceived": 1e9})
	_, values := promtooltest.Scrape(t, "ingest", h)
	if got := values["wikiflow_ingest_events_published_total"]; got != float64(in.Stats().Published.Load()) {
		t.Errorf("wikiflow_ingest_events_published_total = %v, Stats.Published = %d", got, in.Stats().Published.Load())
	}
}
