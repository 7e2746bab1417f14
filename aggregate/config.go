package aggregate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Config configures the aggregate stage.
type Config struct {
	// NATS reaches the JetStream server (default nats://127.0.0.1:4222).
	NATS brokers.NATS
	// Redis reaches the projection's Redis (default redis://127.0.0.1:6379/0).
	Redis brokers.Redis
	// Stream is the JetStream stream to consume (default wire.DefaultStream,
	// "WIKIMEDIA"). The bridge creates it; aggregate waits for it.
	Stream string
	// Consumer is the durable consumer's name, which is also the name of its
	// watermark in Redis (default "aggregate"). Instances sharing a name share the
	// work of one consumer.
	Consumer string
	// FilterSubject selects the events this consumer counts (default
	// wire.SubjectAll, every event). Scale out with disjoint filters, each with its
	// own Consumer name (and so its own watermark), or with Shard, which
	// partitions every event by wiki.
	FilterSubject string
	// Base is the projection's base name, which is also the name of the legacy
	// domain -> count hash (default wire.DefaultHash, "wikimedia_stats").
	Base string
	// BatchSize is the most messages fetched and applied at once (default 3000).
	// The consumer's MaxAckPending is 8×BatchSize (an instance may hold a batch,
	// the next one and the acks of the previous one). Larger batches amortise the
	// per-apply cost and pre-aggregate more (a page or editor of an hour bucket,
	// and each hash counter, is written once per batch): catching up a backlog of
	// generated events, Redis spent 13.4 µs per event with 3000, 13.2 with 4000
	// and about 17 with 2000; memory grows with it (two batches are held while
	// catching up: the aggregate's peak RSS is about 80 MiB with 3000, 110 with
	// 5000). Each apply is one Lua script, which blocks Redis for its duration
	// (some 30-40 ms for 3000 events of a backlog; live batches are small).
	BatchSize int
	// MaxWait is how long one fetch waits for BatchSize messages (default 200ms).
	MaxWait time.Duration
	// AckWait is the consumer's redelivery timeout for unacknowledged messages
	// (default 30s).
	AckWait time.Duration
	// Shard is "k/N": this instance counts shard k of N (default "0/1", the
	// whole stream). With N > 1 it consumes the stream's shard mirror (see
	// shard.go) with the consumer Consumer-s<k>, into shard k of the projection;
	// FilterSubject must then be the default.
	Shard string
	// Replicas is the replica count of the consumer, and of the shard mirror when
	// this instance creates it (default 0: the stream's).
	Replicas int
}

// Defaults.
const (
	DefaultConsumer  = "aggregate"
	DefaultBatchSize = 3000
	DefaultMaxWait   = 200 * time.Millisecond
	DefaultAckWait   = 30 * time.Second
)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		NATS:          brokers.NATS{URL: brokers.DefaultNATS},
		Redis:         brokers.Redis{URL: brokers.DefaultRedis},
		Stream:        wire.DefaultStream,
		Consumer:      DefaultConsumer,
		FilterSubject: wire.SubjectAll,
		Base:          wire.DefaultHash,
		BatchSize:     DefaultBatchSize,
		MaxWait:       DefaultMaxWait,
		AckWait:       DefaultAckWait,
		Shard:         "0/1",
	}
}

// Flags registers the aggregate flags on f, bound to c.
func Flags(f *cli.Flags, c *Config) {
	brokers.NATSFlags(f, &c.NATS)
	brokers.RedisFlags(f, &c.Redis)
	d := DefaultConfig()
	f.String(&c.Stream, "stream", "WIKIFLOW_STREAM", d.Stream, "JetStream stream of the events")
	f.String(&c.Consumer, "consumer", "WIKIFLOW_AGGREGATE_CONSUMER", d.Consumer, "durable consumer name (also the watermark's name in Redis)")
	f.String(&c.FilterSubject, "filter-subject", "WIKIFLOW_AGGREGATE_FILTER", d.FilterSubject, "subjects this consumer counts (use disjoint filters and distinct consumer names to scale out)")
	f.String(&c.Base, "hash", "WIKIFLOW_HASH", d.Base, "projection base name (the legacy domain -> count hash)")
	f.Int(&c.BatchSize, "batch-size", "WIKIFLOW_AGGREGATE_BATCH", d.BatchSize, "messages fetched and applied at once")
	f.Duration(&c.MaxWait, "max-wait", "WIKIFLOW_AGGREGATE_MAX_WAIT", d.MaxWait, "how long one fetch waits for a full batch")
	f.Duration(&c.AckWait, "ack-wait", "WIKIFLOW_AGGREGATE_ACK_WAIT", d.AckWait, "redelivery timeout of unacknowledged messages")
	f.String(&c.Shard, "shard", "WIKIFLOW_AGGREGATE_SHARD", d.Shard, "k/N: count shard k of N (partitioned by wiki), with its own consumer and watermark")
	f.Int(&c.Replicas, "replicas", "WIKIFLOW_AGGREGATE_REPLICAS", d.Replicas, "replicas of the consumer and the shard mirror (0: as the stream)")
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.NATS.URL == "" {
		errs = append(errs, errors.New("nats-url: must not be empty"))
	}
	if _, err := c.Redis.Options(); err != nil {
		errs = append(errs, err)
	}
	if err := wire.ValidStreamName(c.Stream); err != nil {
		errs = append(errs, fmt.Errorf("stream: %w", err))
	}
	if c.Consumer == "" || strings.ContainsAny(c.Consumer, " \t.*>") {
		errs = append(errs, fmt.Errorf("consumer: %q is not a valid durable name", c.Consumer))
	}
	if c.FilterSubject == "" || strings.ContainsAny(c.FilterSubject, " \t") ||
		strings.HasPrefix(c.FilterSubject, ".") || strings.HasSuffix(c.FilterSubject, ".") {
		errs = append(errs, fmt.Errorf("filter-subject: %q is not a valid subject", c.FilterSubject))
	}
	if c.Base == "" || strings.ContainsAny(c.Base, "{}") {
		errs = append(errs, fmt.Errorf("hash: %q must be non-empty and hold no braces", c.Base))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("batch-size: %d is not in 1..10000", c.BatchSize))
	}
	if c.MaxWait <= 0 {
		errs = append(errs, fmt.Errorf("max-wait: %v must be positive", c.MaxWait))
	}
	if _, n, err := ParseShard(c.Shard); err != nil {
		errs = append(errs, err)
	} else if n > 1 && c.FilterSubject != wire.SubjectAll {
		errs = append(errs, fmt.Errorf("filter-subject: %q cannot be combined with shard %s (a shard's filter is its partition)", c.FilterSubject, c.Shard))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas: %d is not in 0..5", c.Replicas))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("ack-wait: %v must be at least 1s", c.AckWait))
	} else if c.AckWait <= c.MaxWait {
		errs = append(errs, fmt.Errorf("ack-wait: %v must exceed max-wait %v", c.AckWait, c.MaxWait))
	}
	return errors.Join(errs...)
}
