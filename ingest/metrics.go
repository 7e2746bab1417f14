package ingest

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// subsystem is the second word of ingest's metric names: wikiflow_ingest_….
const subsystem = "ingest"

// Collectors returns ingest's Prometheus metrics, each read from Stats when
// scraped: wikiflow_ingest_events_published_total and the others below.
func (in *Ingester) Collectors() []prometheus.Collector {
	s := &in.stats
	c := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return obs.Counter(subsystem, name, help, v)
	}
	return []prometheus.Collector{
		c("frames_read_total", "SSE message frames read from the feed.", &s.Frames),
		c("read_bytes_total", "Data bytes of the message frames read.", &s.Bytes),
		c("events_published_total", "Events written to the Kafka events topic.", &s.Published),
		c("duplicates_skipped_total", "Events skipped because their meta.id was published recently (the overlap a resume repeats).", &s.Duplicates),
		c("canaries_dropped_total", "Canary events dropped.", &s.Canaries),
		c("dead_letters_total", "Frames written to the dead-letter topic, every reason.", &s.DeadLettered),
		c("dead_letters_invalid_total", "Dead letters that were not usable events (bad JSON, missing meta.id, meta.domain or meta.dt).", &s.DeadInvalid),
		c("dead_letters_oversize_total", "Dead letters larger than the maximum event size.", &s.DeadOversize),
		c("dead_letters_rejected_total", "Events Kafka refused as too large, dead-lettered instead.", &s.DeadRejected),
		c("events_lost_total", "Frames read but not written because Kafka refused them until the drain timeout at shutdown.", &s.Lost),
		c("connection_attempts_total", "Connection attempts to the feed.", &s.Connections),
		c("reconnects_total", "Connection attempts to the feed after the first.", &s.Reconnects),
		c("connection_errors_total", "Connection attempts that failed: network errors and non-200 answers.", &s.HTTPErrors),
		c("error_frames_total", "\"event: error\" frames sent by the feed.", &s.ErrorFrames),
		c("connections_failed_total", "Connections that brought no new event.", &s.FailedConnections),
		obs.Gauge(subsystem, "consecutive_failed_connections", "Connections in a row that brought no new event (the position is stuck while it grows).",
			func() float64 { return float64(s.ConsecutiveFailures.Load()) }),
		c("history_gaps_total", "Starts from --since whose first event came much later: history the feed no longer held.", &s.Gaps),
		c("history_gap_seconds_total", "Seconds of history lost to those gaps.", &s.GapSeconds),
		c("idle_timeouts_total", "Connections dropped because the feed stayed silent.", &s.IdleTimeouts),
		c("truncated_connections_total", "Connections that ended inside a frame (fetched again after reconnecting).", &s.Truncated),
		c("kafka_write_retries_total", "Kafka writes retried after a failure.", &s.WriteRetries),
		obs.Gauge(subsystem, "last_event_timestamp_seconds", "meta.dt of the last event read, Unix time in seconds (0: none yet).",
			obs.Seconds(&s.LastEventTime, time.Millisecond)),
		obs.Gauge(subsystem, "last_received_timestamp_seconds", "When the last frame was received, Unix time in seconds (0: none yet).",
			obs.Seconds(&s.LastReceived, time.Nanosecond)),
	}
}
