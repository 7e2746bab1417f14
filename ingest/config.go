// Package ingest reads the Wikimedia EventStreams recentchange feed (Server-Sent
// Events over HTTP) and publishes every event to Kafka: key = the wiki, value = the
// raw JSON bytes untouched, headers = the SSE id, meta.id and the receipt time.
//
// The position lives in Kafka itself: on start, ingest reads the last records of the
// topic and resumes the feed from them with Last-Event-ID (or from Config.Since when
// the topic is empty). Writes wait for every in-sync replica (RequireAll) and are
// retried until they succeed, so an event read is never dropped; a resume can repeat a
// few events, which a bounded set of recent meta.ids removes (later hops dedupe too).
// Frames that are not usable events go to a dead-letter topic with the reason, so
// every frame read is accounted for as published, duplicate, canary or dead-lettered.
package ingest

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Version is the wikiflow version sent in the User-Agent. The main package sets it
// at start (or the build sets it with
// -ldflags "-X github.com/wikiflow/wikiflow/ingest.Version=1.2.3"); it is "dev" otherwise.
var Version = "dev"

// DefaultURL is the public Wikimedia EventStreams recentchange endpoint.
const DefaultURL = "https://stream.wikimedia.org/v2/stream/recentchange"

// DefaultContact is the contact put in the User-Agent, as Wikimedia's policy asks.
const DefaultContact = "https://github.com/wikiflow/wikiflow/issues"

// goAgent is the HTTP library part of the User-Agent (Go's own default agent).
const goAgent = "Go-http-client/1.1"

// lineSlack is how much longer than MaxEventSize an SSE line may be before the
// reader stops keeping its bytes (the frame is then dead-lettered as oversize).
const lineSlack = 64 << 10

// Config configures ingest.
type Config struct {
	// URL is the EventStreams endpoint (default DefaultURL).
	URL string
	// Contact is the contact URL or e-mail address put in the User-Agent
	// (default DefaultContact). Wikimedia refuses clients without one.
	Contact string
	// Since is where to start when Kafka holds no position yet: an ISO-8601 time
	// ("2024-05-01T12:00:00Z" or "2024-05-01"), Unix milliseconds, or a duration such
	// as "10m" meaning that long before start. Empty (the default) means live, from now.
	// Wikimedia keeps about 7 days.
	Since string
	// IdleTimeout is how long the feed may stay silent before ingest drops the
	// connection and reconnects (default 60s). The feed sends no heartbeat.
	IdleTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay between reconnections and between
	// retries of a failed Kafka write (defaults 1s and 60s). A connection that
	// brings no new event (an error, a non-200 answer, only duplicates, error
	// frames or silence) is a failure: the ceiling doubles per failure up to
	// BackoffMax and the delay is drawn over its upper half (at most 7 connections
	// in the first minute with the defaults); only a connection with a new event
	// resets it. A Retry-After longer than the delay is honoured (up to 10m).
	BackoffMin, BackoffMax time.Duration
	// MaxEventSize is the largest event accepted, in bytes (default 1 MiB); larger
	// ones go to the dead-letter topic, cut to this size.
	MaxEventSize int
	// Kafka holds the brokers, the events topic (default wire.DefaultTopic),
	// TLS and SASL settings.
	Kafka brokers.Kafka
	// DeadLetterTopic receives the frames that are not usable events, with the
	// reason in a header (default wire.DefaultDeadLetterTopic).
	DeadLetterTopic string
	// Partitions is the partition count of the topics when ingest creates them
	// because they do not exist (default 3).
	Partitions int
	// ReplicationFactor is the replication factor of the topics when ingest
	// creates them (default 1).
	ReplicationFactor int
	// MinInsyncReplicas is the topics' min.insync.replicas when ingest creates
	// them (default 0: the broker's).
	MinInsyncReplicas int
	// BatchSize is the most events written to Kafka in one batch (default 500).
	BatchSize int
	// BatchTimeout is how long a batch waits to fill before it is written
	// (default 10ms).
	BatchTimeout time.Duration
	// DedupeWindow is how many recent meta.ids are remembered to skip the events a
	// resume repeats (default 10000); 0 turns the check off.
	DedupeWindow int
	// DrainTimeout bounds how long shutdown keeps trying to write the events read
	// so far when Kafka does not accept them (default 30s).
	DrainTimeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		URL:               DefaultURL,
		Contact:           DefaultContact,
		IdleTimeout:       60 * time.Second,
		BackoffMin:        time.Second,
		BackoffMax:        60 * time.Second,
		MaxEventSize:      1 << 20,
		Kafka:             brokers.Kafka{Brokers: []string{brokers.DefaultKafka}, Topic: wire.DefaultTopic},
		DeadLetterTopic:   wire.DefaultDeadLetterTopic,
		Partitions:        3,
		ReplicationFactor: 1,
		BatchSize:         500,
		BatchTimeout:      10 * time.Millisecond,
		DedupeWindow:      10000,
		DrainTimeout:      30 * time.Second,
	}
}

// Flags registers ingest's flags on f, bound to c, with the defaults of DefaultConfig.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	f.String(&c.URL, "url", "WIKIFLOW_SOURCE_URL", d.URL, "EventStreams URL to read")
	f.String(&c.Contact, "contact", "WIKIFLOW_CONTACT", d.Contact, "contact URL or e-mail sent in the User-Agent (Wikimedia requires one)")
	f.String(&c.Since, "since", "WIKIFLOW_SINCE", d.Since, `start point when Kafka holds no position: ISO-8601 time, Unix ms, or a duration like "10m" (default: live)`)
	f.Duration(&c.IdleTimeout, "idle-timeout", "WIKIFLOW_IDLE_TIMEOUT", d.IdleTimeout, "reconnect when the feed sends nothing for this long")
	f.Duration(&c.BackoffMin, "backoff-min", "WIKIFLOW_BACKOFF_MIN", d.BackoffMin, "smallest delay before reconnecting or retrying a write")
	f.Duration(&c.BackoffMax, "backoff-max", "WIKIFLOW_BACKOFF_MAX", d.BackoffMax, "largest delay before reconnecting or retrying a write")
	f.Int(&c.MaxEventSize, "max-event-size", "WIKIFLOW_MAX_EVENT_SIZE", d.MaxEventSize, "largest event accepted, in bytes; larger ones are dead-lettered")
	brokers.KafkaFlags(f, &c.Kafka, wire.DefaultTopic)
	f.String(&c.DeadLetterTopic, "dead-letter-topic", "WIKIFLOW_DEAD_LETTER_TOPIC", d.DeadLetterTopic, "Kafka topic for rejected frames")
	f.Int(&c.Partitions, "partitions", "WIKIFLOW_KAFKA_PARTITIONS", d.Partitions, "partitions of the topics when ingest creates them")
	f.Int(&c.ReplicationFactor, "replication-factor", "WIKIFLOW_KAFKA_REPLICATION_FACTOR", d.ReplicationFactor, "replication factor of the topics when ingest creates them")
	f.Int(&c.MinInsyncReplicas, "min-insync-replicas", "WIKIFLOW_KAFKA_MIN_INSYNC_REPLICAS", d.MinInsyncReplicas, "min.insync.replicas of the topics when ingest creates them (0: the broker's)")
	f.Int(&c.BatchSize, "batch-size", "WIKIFLOW_INGEST_BATCH_SIZE", d.BatchSize, "most events per Kafka write")
	f.Duration(&c.BatchTimeout, "batch-timeout", "WIKIFLOW_INGEST_BATCH_TIMEOUT", d.BatchTimeout, "longest wait for a batch to fill")
	f.Int(&c.DedupeWindow, "dedupe-window", "WIKIFLOW_INGEST_DEDUPE_WINDOW", d.DedupeWindow, "recent meta.ids remembered to skip repeated events (0: off)")
	f.Duration(&c.DrainTimeout, "drain-timeout", "WIKIFLOW_INGEST_DRAIN_TIMEOUT", d.DrainTimeout, "how long shutdown keeps retrying the last writes")
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	add := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	u, err := url.Parse(c.URL)
	add(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "",
		"url: %q is not an http(s) URL", brokers.Redact(c.URL))
	add(strings.TrimSpace(c.Contact) != "", "contact: must not be empty (Wikimedia refuses clients without contact information)")
	if _, err := parseSince(c.Since, time.Now()); err != nil {
		errs = append(errs, err)
	}
	add(c.IdleTimeout > 0, "idle-timeout: must be positive, got %s", c.IdleTimeout)
	add(c.BackoffMin > 0, "backoff-min: must be positive, got %s", c.BackoffMin)
	add(c.BackoffMax >= c.BackoffMin, "backoff-max: %s is below backoff-min %s", c.BackoffMax, c.BackoffMin)
	add(c.MaxEventSize > 0, "max-event-size: must be positive, got %d", c.MaxEventSize)
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	add(c.DeadLetterTopic != "", "dead-letter-topic: must not be empty")
	add(c.DeadLetterTopic == "" || c.DeadLetterTopic != c.Kafka.Topic, "dead-letter-topic: must differ from kafka-topic %q", c.Kafka.Topic)
	add(c.Partitions > 0, "partitions: must be positive, got %d", c.Partitions)
	add(c.ReplicationFactor > 0, "replication-factor: must be positive, got %d", c.ReplicationFactor)
	add(c.MinInsyncReplicas >= 0 && c.MinInsyncReplicas <= c.ReplicationFactor,
		"min-insync-replicas: must be between 0 and the replication factor %d, got %d", c.ReplicationFactor, c.MinInsyncReplicas)
	add(c.BatchSize > 0, "batch-size: must be positive, got %d", c.BatchSize)
	add(c.BatchTimeout >= 0, "batch-timeout: must not be negative, got %s", c.BatchTimeout)
	add(c.DedupeWindow >= 0, "dedupe-window: must not be negative, got %d", c.DedupeWindow)
	add(c.DrainTimeout > 0, "drain-timeout: must be positive, got %s", c.DrainTimeout)
	return errors.Join(errs...)
}

// UserAgent returns the User-Agent ingest sends:
// "wikiflow/<Version> (<contact>) Go-http-client/1.1", descriptive with contact
// information as Wikimedia's User-Agent policy requires.
func UserAgent(contact string) string {
	return "wikiflow/" + Version + " (" + strings.TrimSpace(contact) + ") " + goAgent
}

// parseSince turns Config.Since into the value of the ?since= query parameter (Unix
// milliseconds), or "" when since is empty. Durations count back from now.
func parseSince(since string, now time.Time) (string, error) {
	s := strings.TrimSpace(since)
	if s == "" {
		return "", nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return "", fmt.Errorf("since: %q is a negative timestamp", since)
		}
		return strconv.FormatInt(ms, 10), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return "", fmt.Errorf("since: duration %q must not be negative", since)
		}
		return strconv.FormatInt(now.Add(-d).UnixMilli(), 10), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return strconv.FormatInt(t.UnixMilli(), 10), nil
		}
	}
	return "", fmt.Errorf(`since: %q is neither an ISO-8601 time, Unix milliseconds nor a duration like "10m"`, since)
}
