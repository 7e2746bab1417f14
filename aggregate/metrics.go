package aggregate

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// subsystem is the second word of the stage's metric names: wikiflow_aggregate_….
const subsystem = "aggregate"

// applyBuckets are the upper bounds, in seconds, of the apply latency
// histogram: one Lua script call on Redis, usually well under 10 ms.
var applyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// newApplyDuration returns the histogram of successful apply calls.
func newApplyDuration() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: obs.Namespace, Subsystem: subsystem, Name: "apply_duration_seconds",
		Help:    "Time of the Redis script calls that applied a run of events (with its watermark compare-and-set) and succeeded.",
		Buckets: applyBuckets,
	})
}

// Collectors returns the stage's Prometheus metrics, each read from Stats when
// scraped (wikiflow_aggregate_events_applied_total and the others below), and
// the apply latency histogram wikiflow_aggregate_apply_duration_seconds.
func (a *Aggregate) Collectors() []prometheus.Collector {
	s := &a.stats
	c := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return obs.Counter(subsystem, name, help, v)
	}
	g := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return obs.Gauge(subsystem, name, help, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		c("messages_fetched_total", "Messages fetched from the consumer, redeliveries included.", &s.Fetched),
		c("events_applied_total", "Events counted into the projection.", &s.Applied),
		c("batches_applied_total", "Runs of events applied to the projection.", &s.Batches),
		c("duplicates_skipped_total", "Messages skipped because they were applied already.", &s.Duplicates),
		c("messages_out_of_order_total", "Messages nakked because an earlier one was still pending.", &s.OutOfOrder),
		c("invalid_messages_total", "Messages that failed to parse (acked, not counted).", &s.Invalid),
		c("canaries_skipped_total", "Canary events (acked, not counted).", &s.Canaries),
		c("watermark_conflicts_total", "Applies refused because another instance moved the watermark.", &s.CASConflicts),
		c("namespace_switches_total", "Changes of the current projection namespace seen by the stage.", &s.NamespaceSwitches),
		c("consumer_recoveries_total", "Consumer recreations after Redis lost data.", &s.Recoveries),
		c("operation_errors_total", "Failed NATS and Redis operations (each retried).", &s.Errors),
		c("redelivery_waits_total", "Pauses waiting for the message after the watermark to be redelivered.", &s.RedeliveryWaits),
		a.applyDuration,
		g("consumer_pending_messages", "Messages of the consumer not yet delivered (refreshed every few seconds).", &s.Pending),
		g("consumer_ack_pending_messages", "Messages delivered but not acknowledged.", &s.AckPending),
		g("watermark_sequence", "The watermark: the last stream sequence applied.", &s.LastSeq),
		obs.Gauge(subsystem, "freshness_seconds", "Now minus the time ingest received the newest event of the last applied run (0: unknown).",
			obs.Seconds(&s.FreshnessNanos, time.Nanosecond)),
		g("waiting_for_sequence", "Stream sequence counting waits for to be redelivered (0: none).", &s.WaitingForSeq),
		g("stream_last_sequence", "The stream's last sequence at the last check against the watermark.", &s.StreamLastSeq),
		g("stream_tail_lost", "1 while counting is stopped because the stream lost messages already counted (repair: wikiflow rebuild --force), else 0.", &s.StreamTailLost),
	}
}
