package aggregate

import (
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

func TestCollectorsShowEveryCounterAndPassPromtool(t *testing.T) {
	a, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := obs.MetricsHandler(obs.NewRegistry(a.Collectors()...))
	promtooltest.Exposed(t, "aggregate", a.Stats(), h, map[string]float64{"FreshnessNanos": 1e9}, "ApplyNanos", "ApplyCount")
	a.applyDuration.Observe(0.003)
	a.applyDuration.Observe(0.2)
	_, values := promtooltest.Scrape(t, "aggregate", h)
	for sample, want := range map[string]float64{
		`wikiflow_aggregate_apply_duration_seconds_bucket{le="0.0025"}`: 0,
		`wikiflow_aggregate_apply_duration_seconds_bucket{le="0.005"}`:  1,
		`wikiflow_aggregate_apply_duration_seconds_bucket{le="+Inf"}`:   2,
		`wikiflow_aggregate_apply_duration_seconds_count`:               2,
	} {
		if got, ok := values[sample]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", sample, got, ok, want)
		}
	}
}
