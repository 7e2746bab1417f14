package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// messageWriter is the part of *kafka.Writer the sink uses.
type messageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Dead-letter reason classes, counted separately in Stats.
const (
	classInvalid  = "invalid"
	classOversize = "oversize"
	classRejected = "rejected"
)

// deadLetterKey is the key of every dead-letter record.
const deadLetterKey = "invalid"

// shrunkSize is what a dead-letter value is cut to when Kafka refuses it as too large.
const shrunkSize = 64 << 10

// item is one frame on its way to Kafka.
type item struct {
	msg kafka.Message
	// class is the dead-letter reason class, or "" for the events topic.
	class string
	// sseID is the frame's SSE id: once the item is written, the position to
	// resume after it.
	sseID string
}

// sink batches items and writes them synchronously: dead letters first, then
// events, each write retried with backoff until it succeeds.
type sink struct {
	cfg    Config
	log    *slog.Logger
	stats  *Stats
	events messageWriter
	dead   messageWriter
	// durable is the SSE id of the last item of the last batch written.
	durable string
}

func newKafkaWriter(cfg Config, topic string, tr kafka.RoundTripper) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(cfg.Kafka.Brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   int64(cfg.MaxEventSize + lineSlack),
		// The sink forms the batches; kafka-go only needs to send each call's
		// messages promptly.
		BatchTimeout:           min(max(cfg.BatchTimeout, time.Millisecond), 10*time.Millisecond),
		MaxAttempts:            3,
		WriteBackoffMin:        100 * time.Millisecond,
		WriteBackoffMax:        time.Second,
		Transport:              tr,
		AllowAutoTopicCreation: false,
	}
}

// run writes the items of in until in is closed. A batch is written when it holds
// BatchSize items or BatchTimeout after its first item arrived. ctx bounds the
// retries: once it is done, what cannot be written is counted as lost.
func (s *sink) run(ctx context.Context, in <-chan item) {
	batch := make([]item, 0, s.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) > 0 {
			s.flush(ctx, batch)
			batch = batch[:0]
		}
	}
	for {
		if len(batch) == 0 {
			it, ok := <-in
			if !ok {
				return
			}
			batch = append(batch, it)
			timer.Reset(s.cfg.BatchTimeout)
			if len(batch) >= s.cfg.BatchSize {
				flush()
			}
			continue
		}
		select {
		case it, ok := <-in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, it)
			if len(batch) >= s.cfg.BatchSize {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// flush writes one batch and counts its items.
func (s *sink) flush(ctx context.Context, batch []item) {
	var events, dead []kafka.Message
	resume := kafka.Header{Key: HeaderResumeID, Value: []byte(s.durable)}
	for _, it := range batch {
		if it.class != "" {
			dead = append(dead, it.msg)
			continue
		}
		m := it.msg
		m.Headers = append(m.Headers[:len(m.Headers):len(m.Headers)], resume)
		events = append(events, m)
	}
	_, err := s.write(ctx, s.dead, s.cfg.DeadLetterTopic, dead, true)
	var rejected []kafka.Message
	if err == nil {
		rejected, err = s.write(ctx, s.events, s.cfg.Kafka.Topic, events, false)
	}
	if err == nil && len(rejected) > 0 {
		for i := range rejected {
			rejected[i] = rejectedLetter(rejected[i], s.cfg.MaxEventSize)
		}
		_, err = s.write(ctx, s.dead, s.cfg.DeadLetterTopic, rejected, true)
	}
	if err != nil {
		s.stats.Lost.Add(int64(len(batch)))
		s.log.Error("events lost: Kafka did not accept them before shutdown", "events", len(batch), "err", err)
		return
	}
	s.durable = batch[len(batch)-1].sseID
	for _, it := range batch {
		switch it.class {
		case "":
		case classOversize:
			s.stats.DeadOversize.Add(1)
		default:
			s.stats.DeadInvalid.Add(1)
		}
	}
	s.stats.Published.Add(int64(len(events) - len(rejected)))
	s.stats.DeadLettered.Add(int64(len(dead) + len(rejected)))
	s.stats.DeadRejected.Add(int64(len(rejected)))
}

// rejectedLetter turns an event Kafka refused as too large into a dead letter.
func rejectedLetter(m kafka.Message, maxSize int) kafka.Message {
	value := m.Value
	headers := []kafka.Header{
		{Key: wire.HeaderReason, Value: []byte("rejected by Kafka as too large (check the topic's max.message.bytes)")},
	}
	for _, h := range m.Headers {
		if h.Key == wire.HeaderSSEID || h.Key == wire.HeaderReceived || h.Key == wire.HeaderMetaID {
			headers = append(headers, h)
		}
	}
	if len(value) > maxSize {
		headers = append(headers, kafka.Header{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:maxSize]
	}
	return kafka.Message{Key: []byte(deadLetterKey), Value: value, Headers: headers, Time: m.Time}
}

// write writes msgs to w, retrying what failed with backoff until everything is
// written or ctx is done. Messages Kafka refuses as too large even when written
// alone are cut to shrunkSize when shrink is set (dead letters), and returned
// otherwise.
func (s *sink) write(ctx context.Context, w messageWriter, topic string, msgs []kafka.Message, shrink bool) (rejected []kafka.Message, err error) {
	bo := retry.NewBackoff(s.cfg.BackoffMin, s.cfg.BackoffMax)
	pending := msgs
	for len(pending) > 0 {
		err := w.WriteMessages(ctx, pending...)
		if err == nil {
			return rejected, nil
		}
		if ctx.Err() != nil {
			return rejected, fmt.Errorf("write %d records to %s: %w", len(pending), topic, err)
		}
		var (
			failed, tooLarge []kafka.Message
			werrs            kafka.WriteErrors
			mtl              kafka.MessageTooLargeError
			localSize        bool
		)
		switch {
		case errors.As(err, &werrs) && len(werrs) == len(pending):
			for i, e := range werrs {
				switch {
				case e == nil:
				case errors.Is(e, kafka.MessageSizeTooLarge):
					tooLarge = append(tooLarge, pending[i])
				default:
					failed = append(failed, pending[i])
				}
			}
		case errors.As(err, &mtl):
			// kafka-go's own size check: nothing was sent yet.
			tooLarge = []kafka.Message{mtl.Message}
			failed = mtl.Remaining
			localSize = true
		default:
			failed = pending
		}
		for _, m := range tooLarge {
			m, ok, err := s.writeAlone(ctx, w, topic, m, shrink)
			if err != nil {
				return rejected, err
			}
			if !ok {
				rejected = append(rejected, m)
			}
		}
		if len(failed) == 0 {
			return rejected, nil
		}
		if localSize {
			pending = failed
			continue
		}
		s.stats.WriteRetries.Add(1)
		d := bo.Next()
		s.log.Warn("Kafka write failed, retrying", "topic", topic, "records", len(failed), "retry_in", d.Round(time.Millisecond), "err", err)
		if !retry.Sleep(ctx, d) {
			return rejected, fmt.Errorf("write %d records to %s: %w", len(failed), topic, err)
		}
		pending = failed
	}
	return rejected, nil
}

// writeAlone writes one message that was refused as too large within a batch.
// It reports ok=false when Kafka refuses it on its own too and shrink is off.
func (s *sink) writeAlone(ctx context.Context, w messageWriter, topic string, m kafka.Message, shrink bool) (kafka.Message, bool, error) {
	bo := retry.NewBackoff(s.cfg.BackoffMin, s.cfg.BackoffMax)
	for {
		err := w.WriteMessages(ctx, m)
		switch {
		case err == nil:
			return m, true, nil
		case ctx.Err() != nil:
			return m, false, fmt.Errorf("write a record to %s: %w", topic, err)
		case isTooLarge(err):
			if !shrink || len(m.Value) <= shrunkSize {
				if shrink {
					// Even a cut dead letter is refused: nothing smaller is useful.
					s.log.Error("Kafka refuses a dead letter even when cut; dropping it", "topic", topic, "size", len(m.Value))
					s.stats.Lost.Add(1)
					return m, true, nil
				}
				return m, false, nil
			}
			s.log.Warn("Kafka refused a dead letter as too large; cutting it", "topic", topic, "size", len(m.Value), "cut_to", shrunkSize)
			m.Headers = append(m.Headers[:len(m.Headers):len(m.Headers)], kafka.Header{Key: HeaderOriginalSize + "-kafka", Value: []byte(strconv.Itoa(len(m.Value)))})
			m.Value = m.Value[:shrunkSize]
		default:
			s.stats.WriteRetries.Add(1)
			d := bo.Next()
			s.log.Warn("Kafka write failed, retrying", "topic", topic, "records", 1, "retry_in", d.Round(time.Millisecond), "err", err)
			if !retry.Sleep(ctx, d) {
				return m, false, fmt.Errorf("write a record to %s: %w", topic, err)
			}
		}
	}
}

// isTooLarge reports whether err says a message is too large, from kafka-go's own
// check or from the broker (kafka.WriteErrors does not unwrap to its elements).
func isTooLarge(err error) bool {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil && !errors.Is(e, kafka.MessageSizeTooLarge) {
				return false
			}
		}
		return werrs.Count() > 0
	}
	return errors.Is(err, kafka.MessageSizeTooLarge)
}
