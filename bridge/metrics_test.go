package bridge

import (
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

func TestCollectorsShowEveryCounterAndPassPromtool(t *testing.T) {
	b, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := obs.MetricsHandler(obs.NewRegistry(b.Collectors()...))
	promtooltest.Exposed(t, "bridge", b.Stats(), h, nil)
	_, values := promtooltest.Scrape(t, "bridge", h)
	if got := values["wikiflow_bridge_kafka_lag_records"]; got != float64(b.Stats().KafkaLag.Load()) {
		t.Errorf("wikiflow_bridge_kafka_lag_records = %v, Stats.KafkaLag = %d", got, b.Stats().KafkaLag.Load())
	}
}
