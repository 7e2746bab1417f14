package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// GiB is 1024³ bytes.
const GiB = 1 << 30

// Config configures a Bridge. Every zero-valued duration or size that matters has a
// default in DefaultConfig; Validate reports every problem at once.
type Config struct {
	// Kafka is where the events are read: brokers (default 127.0.0.1:9092), topic
	// (default wire.DefaultTopic), TLS and SASL.
	Kafka brokers.Kafka
	// NATS is the server holding the stream (default nats://127.0.0.1:4222).
	NATS brokers.NATS
	// Stream is the JetStream stream the events are written to (default
	// wire.DefaultStream). It is created when missing, with subjects wire.SubjectAll.
	Stream string
	// MaxAge is how long the stream keeps a message (default 168h; 0 keeps messages
	// forever).
	MaxAge time.Duration
	// MaxBytes is the stream's size limit; the oldest messages are discarded beyond it
	// (default 10 GiB; -1 means unlimited).
	MaxBytes int64
	// DuplicateWindow is the stream's window for Nats-Msg-Id deduplication (default 2m).
	// The bridge does not depend on it across restarts: it resumes from the Kafka
	// offsets recorded in the stream itself.
	DuplicateWindow time.Duration
	// Replicas is the replica count used when creating the stream (default 1).
	Replicas int
	// MaxInFlight is the most asynchronous publishes awaiting their ack at once
	// (default 1024). It is also how many records per partition a restart reads
	// again to find where the stream stopped.
	MaxInFlight int
	// AckEvery is how often a publish asks for an ack (default 64): every AckEvery-th
	// publish, and the last of each burst, asks for one; the others are sent without
	// a reply subject. A publish that asks for an ack confirms every publish before it,
	// because each expects the stream's last sequence the one before it leaves
	// (see publisher). 1 asks for an ack on every publish; above MaxInFlight it acts
	// as MaxInFlight.
	AckEvery int
	// FetchMaxWait is how long one Kafka fetch waits for new records (default 250ms).
	FetchMaxWait time.Duration
	// AckTimeout is how long a publish waits for its ack before it is treated as
	// ambiguous and checked against the stream (default 5s).
	AckTimeout time.Duration
	// ProgressInterval is the period of the progress log line (default 10s).
	ProgressInterval time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Kafka:            brokers.Kafka{Brokers: []string{brokers.DefaultKafka}, Topic: wire.DefaultTopic},
		NATS:             brokers.NATS{URL: brokers.DefaultNATS},
		Stream:           wire.DefaultStream,
		MaxAge:           168 * time.Hour,
		MaxBytes:         10 * GiB,
		DuplicateWindow:  2 * time.Minute,
		Replicas:         1,
		MaxInFlight:      1024,
		AckEvery:         64,
		FetchMaxWait:     250 * time.Millisecond,
		AckTimeout:       5 * time.Second,
		ProgressInterval: 10 * time.Second,
	}
}

// Flags registers the bridge's flags on f, bound to c, with DefaultConfig's values as
// defaults and WIKIFLOW_* environment variables as fallbacks.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	brokers.KafkaFlags(f, &c.Kafka, wire.DefaultTopic)
	brokers.NATSFlags(f, &c.NATS)
	f.String(&c.Stream, "stream", "WIKIFLOW_STREAM", d.Stream, "JetStream stream of the events")
	f.Duration(&c.MaxAge, "stream-max-age", "WIKIFLOW_STREAM_MAX_AGE", d.MaxAge, "how long the stream keeps a message (0: forever)")
	f.Int64(&c.MaxBytes, "stream-max-bytes", "WIKIFLOW_STREAM_MAX_BYTES", d.MaxBytes, "stream size limit in bytes, oldest discarded first (-1: unlimited)")
	f.Duration(&c.DuplicateWindow, "stream-duplicate-window", "WIKIFLOW_STREAM_DUPLICATE_WINDOW", d.DuplicateWindow, "Nats-Msg-Id deduplication window of the stream")
	f.Int(&c.Replicas, "stream-replicas", "WIKIFLOW_STREAM_REPLICAS", d.Replicas, "replicas when creating the stream")
	f.Int(&c.MaxInFlight, "bridge-max-in-flight", "WIKIFLOW_BRIDGE_MAX_IN_FLIGHT", d.MaxInFlight, "most asynchronous publishes awaiting their ack")
	f.Int(&c.AckEvery, "bridge-ack-every", "WIKIFLOW_BRIDGE_ACK_EVERY", d.AckEvery, "ask for an ack on every n-th publish and the last of a burst; an ack confirms the publishes before it (1: every publish)")
	f.Duration(&c.FetchMaxWait, "bridge-fetch-max-wait", "WIKIFLOW_BRIDGE_FETCH_MAX_WAIT", d.FetchMaxWait, "how long one Kafka fetch waits for records")
	f.Duration(&c.AckTimeout, "bridge-ack-timeout", "WIKIFLOW_BRIDGE_ACK_TIMEOUT", d.AckTimeout, "how long a publish waits for its ack")
	f.Duration(&c.ProgressInterval, "bridge-progress-interval", "WIKIFLOW_BRIDGE_PROGRESS_INTERVAL", d.ProgressInterval, "period of the progress log line")
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.NATS.URL) == "" {
		errs = append(errs, errors.New("nats-url: must not be empty"))
	}
	if err := wire.ValidStreamName(c.Stream); err != nil {
		errs = append(errs, fmt.Errorf("stream: %w", err))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("stream-max-age: %s is negative (0 keeps messages forever)", c.MaxAge))
	}
	if c.MaxBytes == 0 || c.MaxBytes < -1 {
		errs = append(errs, fmt.Errorf("stream-max-bytes: %d must be positive or -1 (unlimited)", c.MaxBytes))
	}
	if c.DuplicateWindow <= 0 {
		errs = append(errs, fmt.Errorf("stream-duplicate-window: %s must be positive", c.DuplicateWindow))
	} else if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		errs = append(errs, fmt.Errorf("stream-duplicate-window: %s must not exceed stream-max-age %s", c.DuplicateWindow, c.MaxAge))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream-replicas: %d is not between 1 and 5", c.Replicas))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 65536 {
		errs = append(errs, fmt.Errorf("bridge-max-in-flight: %d is not between 1 and 65536", c.MaxInFlight))
	}
	if c.AckEvery < 1 {
		errs = append(errs, fmt.Errorf("bridge-ack-every: %d must be at least 1 (1: an ack for every publish)", c.AckEvery))
	}
	if c.FetchMaxWait <= 0 {
		errs = append(errs, fmt.Errorf("bridge-fetch-max-wait: %s must be positive", c.FetchMaxWait))
	}
	if c.AckTimeout <= 0 {
		errs = append(errs, fmt.Errorf("bridge-ack-timeout: %s must be positive", c.AckTimeout))
	}
	if c.ProgressInterval <= 0 {
		errs = append(errs, fmt.Errorf("bridge-progress-interval: %s must be positive", c.ProgressInterval))
	}
	return errors.Join(errs...)
}
