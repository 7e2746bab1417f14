package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

// unreachable points every dependency at a closed port: the stages keep running
// (retrying) and serve their health pages.
var unreachable = map[string]string{
	"WIKIFLOW_KAFKA_BROKERS": "127.0.0.1:1",
	"WIKIFLOW_NATS_URL":      "nats://127.0.0.1:1",
	"WIKIFLOW_REDIS_URL":     "redis://127.0.0.1:1/0",
	"WIKIFLOW_SOURCE_URL":    "http://127.0.0.1:1/v2/stream/recentchange",
}

// readMetrics lists, per stage, metrics that lab/bench/ and lab/chaos/ read by name
// (and the type they must have), and that README.md and docs/ name.
var readMetrics = map[string]map[string]string{
	"ingest": {
		"wikiflow_ingest_events_published_total": "counter", "wikiflow_ingest_frames_read_total": "counter",
		"wikiflow_ingest_duplicates_skipped_total": "counter", "wikiflow_ingest_dead_letters_total": "counter",
		"wikiflow_ingest_events_lost_total": "counter", "wikiflow_ingest_reconnects_total": "counter",
		"wikiflow_ingest_kafka_write_retries_total": "counter", "wikiflow_ingest_last_event_timestamp_seconds": "gauge",
		"wikiflow_ingest_consecutive_failed_connections": "gauge", "wikiflow_ingest_history_gap_seconds_total": "counter",
	},
	"bridge": {
		"wikiflow_bridge_kafka_lag_records": "gauge", "wikiflow_bridge_events_published_total": "counter",
		"wikiflow_bridge_publish_duplicates_total": "counter", "wikiflow_bridge_records_already_bridged_total": "counter",
		"wikiflow_bridge_resyncs_total": "counter", "wikiflow_bridge_pipeline_restarts_total": "counter",
		"wikiflow_bridge_records_read_total": "counter",
	},
	"aggregate": {
		"wikiflow_aggregate_events_applied_total": "counter", "wikiflow_aggregate_duplicates_skipped_total": "counter",
		"wikiflow_aggregate_watermark_conflicts_total": "counter", "wikiflow_aggregate_consumer_recoveries_total": "counter",
		"wikiflow_aggregate_messages_out_of_order_total": "counter", "wikiflow_aggregate_operation_errors_total": "counter",
		"wikiflow_aggregate_messages_fetched_total": "counter", "wikiflow_aggregate_watermark_sequence": "gauge",
		"wikiflow_aggregate_consumer_pending_messages": "gauge", "wikiflow_aggregate_stream_tail_lost": "gauge",
		"wikiflow_aggregate_apply_duration_seconds": "histogram",
	},
}

// TestStageMetricsPassPromtool runs each stage and feeds its real GET /metrics
// page to Prometheus's promtool, which must report no problem; the metrics other
// code reads must be there with the right type. The API's page, which appends
// the stages' pages to its own, must pass too.
func TestStageMetricsPassPromtool(t *testing.T) {
	promtooltest.Path(t)
	var pages []string
	for stage, want := range readMetrics {
		r := startCommand(t, []string{stage}, unreachable, true)
		pages = append(pages, "http://"+r.addr+"/metrics")
		types := checkMetricsPage(t, stage, r)
		want = merge(want, map[string]string{"go_goroutines": "gauge", "process_resident_memory_bytes": "gauge"})
		for name, typ := range want {
			if types[name] != typ {
				t.Errorf("%s: type %q, want %q", name, types[name], typ)
			}
		}
	}
	env := merge(unreachable, map[string]string{"WIKIFLOW_API_ADDR": freeAddr(t), "WIKIFLOW_STAGE_METRICS": strings.Join(pages, ",")})
	api := startServing(t, []string{"api"}, env, env["WIKIFLOW_API_ADDR"])
	api.get(t, "/stats")
	types := checkMetricsPage(t, "api", api)
	if types["wikiflow_stage_up"] != "gauge" || types["wikiflow_ingest_events_published_total"] != "counter" || types["wikiflow_api_request_duration_seconds"] != "histogram" {
		t.Errorf("the API's page lacks the stages' metrics: %v", types)
	}
}

// checkMetricsPage fetches the command's /metrics, checks it with promtool and
// returns the TYPE of each metric family.
func checkMetricsPage(t *testing.T, name string, r *running) map[string]string {
	t.Helper()
	code, page := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("%s /metrics: %d", name, code)
	}
	promtooltest.Check(t, name+" /metrics", page)
	types := map[string]string{}
	for _, line := range strings.Split(string(page), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}
