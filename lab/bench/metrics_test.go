package bench

import "testing"

func TestMetricValue(t *testing.T) {
	text := `# HELP wikiflow_ingest_events_published_total Events written to the Kafka events topic.
# TYPE wikiflow_ingest_events_published_total counter
wikiflow_ingest_events_published_total 12345
wikiflow_ingest_events_published_total_bytes 99
wikiflow_stage_up{url="x"} 1
wikiflow_bridge_kafka_lag_records 1.5e+06
`
	tests := []struct {
		name   string
		want   float64
		wantOK bool
	}{
		{"wikiflow_ingest_events_published_total", 12345, true},
		{"wikiflow_ingest_events_published_total_bytes", 99, true},
		{"wikiflow_bridge_kafka_lag_records", 1.5e6, true},
		{"wikiflow_stage_up", 0, false},
		{"wikiflow_missing", 0, false},
	}
	for _, tt := range tests {
		got, ok := MetricValue(text, tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("MetricValue(%s) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}
