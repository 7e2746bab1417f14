package gen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// kafkaWriter is where WriteKafka sends its records; *kafka.Writer satisfies it.
type kafkaWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// KafkaConfig configures the Kafka writer of the generator.
type KafkaConfig struct {
	// Kafka holds brokers, topic, TLS and SASL (topic default wire.DefaultTopic).
	Kafka brokers.Kafka
	// BatchSize is the most records per produce request (default 1000).
	BatchSize int
	// BatchTimeout is how long a partial batch waits before it is sent (default 5 ms).
	BatchTimeout time.Duration
}

// NewKafkaWriter returns a synchronous kafka-go writer configured like ingest's:
// records keyed by wiki and partitioned by key hash, acknowledged by all in-sync
// replicas, with a short batch timeout. The caller closes it.
func NewKafkaWriter(c KafkaConfig) (*kafka.Writer, error) {
	tr, err := c.Kafka.Transport()
	if err != nil {
		return nil, fmt.Errorf("kafka writer: %w", err)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 5 * time.Millisecond
	}
	return &kafka.Writer{
		Addr:         kafka.TCP(c.Kafka.Brokers...),
		Topic:        c.Kafka.Topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    c.BatchSize,
		BatchTimeout: c.BatchTimeout,
		MaxAttempts:  10,
		Transport:    tr,
	}, nil
}

// batchFor returns how many events to send at once: about 20 batches per second
// when rate limited, large batches otherwise.
func batchFor(rate float64) int {
	if rate <= 0 {
		return 1000
	}
	return max(1, min(1000, int(rate/20)))
}

// pacer spaces work so that event i is sent no earlier than start + i/rate.
type pacer struct {
	start time.Time
	rate  float64
}

func (p pacer) wait(ctx context.Context, done int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	d := time.Until(p.start.Add(time.Duration(float64(done) / p.rate * float64(time.Second))))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WriteKafka writes the next n events of g to Kafka as ingest would: key = wiki,
// value = the raw JSON, headers wire.HeaderMetaID (meta.id), wire.HeaderSubject
// (the event's subject in the stream), wire.HeaderSSEID (an SSE id in Wikimedia's
// JSON form, dated by meta.dt) and wire.HeaderReceived (the send time, Unix ns).
// It sends in batches, at rate events per second when rate > 0
// (0 = as fast as possible), and calls progress (when not nil) with the number of
// events written so far after each batch.
//
// Events Kafka refuses are written again for up to WriteRetry. The returned
// Truth counts the events Kafka acknowledged; on an error (including
// cancellation, returned as ctx.Err()) it still counts those written before it.
func WriteKafka(ctx context.Context, w kafkaWriter, g *Generator, n int, rate float64, progress func(done int)) (*Truth, error) {
	truth := NewTruth(g.Seed())
	size := batchFor(rate)
	msgs := make([]kafka.Message, 0, size)
	infos := make([]Info, 0, size)
	pace := pacer{start: time.Now(), rate: rate}
	for done := 0; done < n; {
		if err := pace.wait(ctx, done); err != nil {
			return truth, err
		}
		k := min(size, n-done)
		msgs, infos = msgs[:0], infos[:0]
		// One allocation per batch holds every key, value and header of it.
		slab := make([]byte, 0, k*1600)
		for range k {
			data := g.Next()
			in := g.Last()
			infos = append(infos, *in)
			var part [6]int
			part[0] = len(slab)
			slab = append(slab, in.Wiki...)
			part[1] = len(slab)
			slab = append(slab, data...)
			part[2] = len(slab)
			slab = append(slab, in.MetaID[:]...)
			part[3] = len(slab)
			slab = appendSubject(slab, in)
			part[4] = len(slab)
			slab = appendSSEID(slab, in.Time)
			part[5] = len(slab)
			slab = strconv.AppendInt(slab, time.Now().UnixNano(), 10)
			cut := func(a, b int) []byte { return slab[a:b:b] }
			msgs = append(msgs, kafka.Message{
				Key:   cut(part[0], part[1]),
				Value: cut(part[1], part[2]),
				Headers: []kafka.Header{
					{Key: wire.HeaderMetaID, Value: cut(part[2], part[3])},
					{Key: wire.HeaderSubject, Value: cut(part[3], part[4])},
					{Key: wire.HeaderSSEID, Value: cut(part[4], part[5])},
					{Key: wire.HeaderReceived, Value: cut(part[5], len(slab))},
				},
			})
		}
		if err := writeBatch(ctx, w, msgs, infos, truth); err != nil {
			if ctx.Err() != nil {
				return truth, ctx.Err()
			}
			return truth, fmt.Errorf("write %d events to Kafka after %d: %w", len(msgs), truth.Events, err)
		}
		done += k
		if progress != nil {
			progress(done)
		}
	}
	return truth, nil
}

// appendSubject appends the stream subject of the event in to b, as
// event.Head.Subject gives it for the event's JSON (whose wiki falls back to the
// domain when empty).
func appendSubject(b []byte, in *Info) []byte {
	wiki := in.Wiki
	if wiki == "" {
		wiki = in.Domain
	}
	return event.AppendSubject(b, wire.SubjectPrefix, wiki, in.Type)
}

// WriteRetry bounds how long WriteKafka writes again the events of a batch that
// Kafka refused: a partition has no leader for the seconds KRaft takes to fence
// a dead broker, and a writer's metadata may name the old leader for a few
// seconds more (Not Leader For Partition), longer than the writer's own retries.
const WriteRetry = 2 * time.Minute

// writeBatch writes msgs, adding each acknowledged event to truth, and writes
// again those Kafka refused, with a growing pause, for up to WriteRetry. An event
// written twice (its acknowledgement lost) is one event: its meta.id is the same.
func writeBatch(ctx context.Context, w kafkaWriter, msgs []kafka.Message, infos []Info, truth *Truth) error {
	deadline := time.Now().Add(WriteRetry)
	pause := 250 * time.Millisecond
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			for j := range infos {
				truth.Add(&infos[j])
			}
			return nil
		}
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == len(msgs) {
			var m []kafka.Message
			var in []Info
			for j := range infos {
				if we[j] == nil {
					truth.Add(&infos[j])
				} else {
					m, in = append(m, msgs[j]), append(in, infos[j])
				}
			}
			msgs, infos = m, in
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// appendSSEID appends an SSE id shaped like Wikimedia's: one position per
// topic-partition, here dated by the event time in milliseconds.
func appendSSEID(b []byte, t time.Time) []byte {
	b = append(b, `[{"topic":"`+KafkaTopicName+`","partition":0,"timestamp":`...)
	b = strconv.AppendInt(b, t.UnixMilli(), 10)
	return append(b, `},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`...)
}
