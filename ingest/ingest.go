package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/wikiflow/wikiflow/internal/retry"
)

// progressEvery is how often Run logs a progress line.
const progressEvery = 10 * time.Second

// Stats counts what ingest did. Every message frame read ends up in exactly one of
// Published, Duplicates, Canaries or DeadLettered (or Lost, when shutdown could not
// write it), once its batch is written.
type Stats struct {
	// Frames counts the "message" frames read from the feed.
	Frames atomic.Int64
	// Bytes counts the data bytes of those frames.
	Bytes atomic.Int64
	// Published counts events written to the events topic.
	Published atomic.Int64
	// Duplicates counts events skipped because their meta.id was published recently
	// (the overlap a resume repeats).
	Duplicates atomic.Int64
	// Canaries counts canary events dropped.
	Canaries atomic.Int64
	// DeadLettered counts frames written to the dead-letter topic, all reasons.
	DeadLettered atomic.Int64
	// DeadInvalid counts dead letters that were not usable events (bad JSON,
	// missing meta.id, meta.domain or meta.dt).
	DeadInvalid atomic.Int64
	// DeadOversize counts dead letters larger than MaxEventSize.
	DeadOversize atomic.Int64
	// DeadRejected counts events Kafka refused as too large, dead-lettered instead.
	DeadRejected atomic.Int64
	// Lost counts frames read but not written because Kafka refused them until the
	// end of DrainTimeout at shutdown. It stays 0 unless Kafka is down at shutdown.
	Lost atomic.Int64
	// Connections counts connection attempts to the feed.
	Connections atomic.Int64
	// Reconnects counts connection attempts after the first.
	Reconnects atomic.Int64
	// HTTPErrors counts attempts that failed: network errors and non-200 statuses.
	HTTPErrors atomic.Int64
	// ErrorFrames counts "event: error" frames sent by the feed (logged, and the
	// connection read on).
	ErrorFrames atomic.Int64
	// FailedConnections counts connections that brought no new event: network
	// errors, non-200 answers, streams that ended with nothing but duplicates,
	// error frames or silence.
	FailedConnections atomic.Int64
	// ConsecutiveFailures is how many connections in a row brought no new event:
	// 0 while ingest makes progress; while it grows the position is stuck (see
	// Degraded).
	ConsecutiveFailures atomic.Int64
	// Gaps counts starts from Since whose first event came more than a minute
	// after Since: the feed no longer held that history (past its retention).
	Gaps atomic.Int64
	// GapSeconds sums the spans those gaps could not recover, in seconds.
	GapSeconds atomic.Int64
	// IdleTimeouts counts connections dropped because the feed stayed silent.
	IdleTimeouts atomic.Int64
	// Truncated counts connections that ended inside a frame (that frame is
	// fetched again after the reconnection).
	Truncated atomic.Int64
	// WriteRetries counts Kafka writes retried after a failure.
	WriteRetries atomic.Int64
	// LastEventTime is meta.dt of the last event read, in Unix milliseconds.
	LastEventTime atomic.Int64
	// LastReceived is when the last frame was received, in Unix nanoseconds.
	LastReceived atomic.Int64

	// mu guards degraded, the reason Degraded reports.
	mu       sync.Mutex
	degraded string
}

// Ingester reads the feed and publishes it to Kafka. Create it with New.
type Ingester struct {
	cfg    Config
	log    *slog.Logger
	stats  Stats
	http   *http.Client
	agent  string
	client *kafka.Client
	tr     *kafka.Transport

	// mu guards lastID, read by tests and by the progress log.
	mu     sync.Mutex
	lastID string
}

// New validates cfg and returns an Ingester. It does not connect to anything.
func New(cfg Config, log *slog.Logger) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest configuration: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	tr, err := cfg.Kafka.Transport()
	if err != nil {
		return nil, fmt.Errorf("kafka transport: %w", err)
	}
	cl, err := cfg.Kafka.Client()
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	cl.Transport = tr
	httpTransport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: cfg.IdleTimeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
		// EventStreams streams are long-lived; gzip would only delay frames.
		DisableCompression: true,
	}
	return &Ingester{
		cfg:    cfg,
		log:    log.With("component", "ingest"),
		http:   &http.Client{Transport: httpTransport}, // no overall timeout: the stream never ends
		agent:  UserAgent(cfg.Contact),
		client: cl,
		tr:     tr,
	}, nil
}

// Stats returns the live counters.
func (in *Ingester) Stats() *Stats { return &in.stats }

// LastEventID returns the SSE id of the last event read from the feed: the
// Last-Event-ID of the next connection.
func (in *Ingester) LastEventID() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastID
}

func (in *Ingester) setLastID(id string) {
	in.mu.Lock()
	in.lastID = id
	in.mu.Unlock()
}

// Run creates the topics if needed, reads the position from Kafka, then reads the
// feed and publishes it until ctx is cancelled. It then writes everything read so
// far (for at most DrainTimeout), closes the Kafka writers and returns nil. It returns
// an error only when events could not be written at shutdown.
func (in *Ingester) Run(ctx context.Context) error {
	defer in.tr.CloseIdleConnections()
	defer in.http.CloseIdleConnections()

	pos, ok := in.start(ctx)
	if !ok {
		return nil
	}
	since, _ := parseSince(in.cfg.Since, time.Now())
	seen := newRecentIDs(in.cfg.DedupeWindow)
	for _, id := range pos.recent {
		seen.add(id)
	}
	in.setLastID(pos.lastID)
	switch {
	case pos.lastID != "":
		in.log.Info("resuming from Kafka", "topic", in.cfg.Kafka.Topic, "records", pos.records, "last_event_id", pos.lastID, "recent_ids", seen.len())
	case since != "":
		in.log.Info("topic is empty: starting from --since", "topic", in.cfg.Kafka.Topic, "since", in.cfg.Since, "since_ms", since)
	default:
		in.log.Info("topic is empty: starting live", "topic", in.cfg.Kafka.Topic)
	}

	events := newKafkaWriter(in.cfg, in.cfg.Kafka.Topic, in.tr)
	dead := newKafkaWriter(in.cfg, in.cfg.DeadLetterTopic, in.tr)
	s := &sink{cfg: in.cfg, log: in.log, stats: &in.stats, events: events, dead: dead, durable: pos.lastID}

	// The sink outlives ctx so that what was read is written; DrainTimeout after
	// ctx ends it gives up.
	writeCtx, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	items := make(chan item, 4*in.cfg.BatchSize)
	sinkDone := make(chan struct{})
	go func() {
		defer close(sinkDone)
		s.run(writeCtx, items)
	}()
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		in.progress(ctx)
	}()

	// Once ctx ends, the sink has DrainTimeout to write what was read. The clock
	// starts at cancellation, not when the feed loop returns, since the loop may be
	// waiting for room in a full channel while Kafka is down.
	go func() {
		select {
		case <-ctx.Done():
		case <-sinkDone:
			return
		}
		t := time.NewTimer(in.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			stopWrites()
		case <-sinkDone:
		}
	}()

	f := &feed{in: in, out: items, seen: seen, since: since}
	f.run(ctx)

	close(items)
	<-sinkDone
	<-progressDone
	if err := events.Close(); err != nil {
		in.log.Warn("close Kafka writer", "topic", in.cfg.Kafka.Topic, "err", err)
	}
	if err := dead.Close(); err != nil {
		in.log.Warn("close Kafka writer", "topic", in.cfg.DeadLetterTopic, "err", err)
	}
	in.logTotals("stopped")
	if lost := in.stats.Lost.Load(); lost > 0 {
		return fmt.Errorf("%d events read from the feed were not written to Kafka", lost)
	}
	return nil
}

// start creates the topics and reads the position, retrying with backoff while
// Kafka is unreachable. It reports false when ctx ended first.
func (in *Ingester) start(ctx context.Context) (position, bool) {
	var pos position
	err := retry.Do(ctx, retry.NewBackoff(in.cfg.BackoffMin, in.cfg.BackoffMax), func() error {
		var err error
		if pos, err = in.position(ctx); err != nil && ctx.Err() != nil {
			return retry.Stop(err)
		}
		return err
	}, func(err error, d time.Duration) {
		in.log.Warn("cannot read the position from Kafka; retrying", "brokers", in.cfg.Kafka.Brokers, "retry_in", d.Round(time.Millisecond), "err", err)
	})
	return pos, err == nil
}

func (in *Ingester) position(ctx context.Context) (position, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	parts, err := ensureTopics(ctx, in.client, in.cfg)
	if err != nil {
		return position{}, err
	}
	return readPosition(ctx, in.client, in.cfg.Kafka.Topic, parts, in.cfg.DedupeWindow)
}

// progress logs a progress line every progressEvery until ctx is done.
func (in *Ingester) progress(ctx context.Context) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	last, lastAt := in.stats.Published.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			pub := in.stats.Published.Load()
			rate := float64(pub-last) / now.Sub(lastAt).Seconds()
			last, lastAt = pub, now
			in.logTotals("progress", "events_per_s", fmt.Sprintf("%.1f", rate))
		}
	}
}

func (in *Ingester) logTotals(msg string, extra ...any) {
	s := &in.stats
	args := append(extra,
		"frames", s.Frames.Load(),
		"published", s.Published.Load(),
		"duplicates", s.Duplicates.Load(),
		"canaries", s.Canaries.Load(),
		"dead_lettered", s.DeadLettered.Load(),
		"reconnects", s.Reconnects.Load(),
		"http_errors", s.HTTPErrors.Load(),
		"bytes", s.Bytes.Load(),
	)
	if ms := s.LastEventTime.Load(); ms > 0 {
		args = append(args, "last_event_time", time.UnixMilli(ms).UTC().Format(time.RFC3339))
	}
	if lost := s.Lost.Load(); lost > 0 {
		args = append(args, "lost", lost)
	}
	in.log.Info(msg, args...)
}

// Ready reports whether ingest can write: the Kafka brokers answer and the events
// topic exists (/readyz). The feed's state is Stats.Degraded's (/healthz).
func (in *Ingester) Ready(ctx context.Context) error {
	return in.cfg.Kafka.TopicReady(ctx, in.client)
}
