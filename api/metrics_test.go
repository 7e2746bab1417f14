package api

import (
	"log/slog"
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

func TestCollectorsShowEveryCounterAndPassPromtool(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StageMetrics = nil
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := obs.MetricsHandler(s.Metrics())
	// RequestsServed is the sum of wikiflow_api_requests_total.
	promtooltest.Exposed(t, "api", s.Stats(), h, nil, "RequestsServed")
	promtooltest.Exposed(t, "api events", s.EventStats(), h, nil)
	_, values := promtooltest.Scrape(t, "api", h)
	for _, r := range append(routes, otherRoute) {
		if _, ok := values[`wikiflow_api_request_duration_seconds_count{route="`+r+`"}`]; !ok {
			t.Errorf("no latency histogram for route %s before any request", r)
		}
	}
}
