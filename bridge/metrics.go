package bridge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// subsystem is the second word of the bridge's metric names: wikiflow_bridge_….
const subsystem = "bridge"

// Collectors returns the bridge's Prometheus metrics, each read from Stats
// when scraped: wikiflow_bridge_events_published_total and the others below.
func (b *Bridge) Collectors() []prometheus.Collector {
	s := &b.stats
	c := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return obs.Counter(subsystem, name, help, v)
	}
	return []prometheus.Collector{
		c("records_read_total", "Kafka records read (records read again after a restart count again).", &s.Read),
		c("events_published_total", "Messages stored in the JetStream stream by this bridge.", &s.Published),
		c("publish_duplicates_total", "Publishes the stream acknowledged as duplicates: the same meta.id was stored within its duplicate window.", &s.Duplicates),
		c("records_already_bridged_total", "Records skipped without publishing because the stream's recovered tail already holds their meta.id.", &s.AlreadyBridged),
		c("canaries_skipped_total", "Canary events skipped.", &s.Canaries),
		c("invalid_records_total", "Records skipped because they are not valid events.", &s.Invalid),
		c("resyncs_total", "Times the chain of publishes broke and the bridge resynchronised with the stream.", &s.Resyncs),
		c("pipeline_restarts_total", "Pipeline restarts after an error.", &s.Restarts),
		obs.Gauge(subsystem, "kafka_lag_records", "Kafka records not yet bridged, summed over the partitions (high watermark minus next offset); -1 while the pipeline is not running and the lag is unknown.",
			func() float64 { return float64(s.KafkaLag.Load()) }),
	}
}
