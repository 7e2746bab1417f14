package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/wire"
)

// StreamConfig returns the configuration the bridge creates the stream with.
func (c Config) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              c.Stream,
		Description:       "Wikimedia recentchange events, bridged from Kafka by wikiflow",
		Subjects:          []string{wire.SubjectAll},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxBytes:          c.MaxBytes,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Duplicates:        c.DuplicateWindow,
		Replicas:          c.Replicas,
		DenyDelete:        true,
		DenyPurge:         true,
	}
}

// ensureStream returns the stream, creating it when missing. An existing stream is
// never recreated; its age, size and duplicate-window limits are updated when they
// differ from the configuration, and other differences are logged.
func (b *Bridge) ensureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	want := b.cfg.StreamConfig()
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, want)
		if err == nil {
			b.log.Info("created stream", "stream", want.Name, "subjects", want.Subjects, "max_age", want.MaxAge,
				"max_bytes", want.MaxBytes, "duplicate_window", want.Duplicates, "replicas", want.Replicas)
			return s, nil
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, want.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", want.Name, err)
	}
	cur := s.CachedInfo().Config
	if cur.MaxAge != want.MaxAge || cur.MaxBytes != want.MaxBytes || cur.Duplicates != want.Duplicates {
		upd := cur
		upd.MaxAge, upd.MaxBytes, upd.Duplicates = want.MaxAge, want.MaxBytes, want.Duplicates
		if s, err = js.UpdateStream(ctx, upd); err != nil {
			return nil, fmt.Errorf("update stream %s limits: %w", want.Name, err)
		}
		b.log.Info("updated stream limits", "stream", want.Name,
			"max_age", fmt.Sprintf("%s -> %s", cur.MaxAge, want.MaxAge),
			"max_bytes", fmt.Sprintf("%d -> %d", cur.MaxBytes, want.MaxBytes),
			"duplicate_window", fmt.Sprintf("%s -> %s", cur.Duplicates, want.Duplicates))
	}
	if !slices.Contains(cur.Subjects, wire.SubjectAll) || cur.Storage != jetstream.FileStorage ||
		cur.Retention != jetstream.LimitsPolicy || !cur.DenyDelete || !cur.DenyPurge {
		b.log.Warn("the existing stream differs from the expected configuration; leaving it as it is",
			"stream", want.Name, "subjects", cur.Subjects, "storage", cur.Storage.String(),
			"retention", cur.Retention.String(), "deny_delete", cur.DenyDelete, "deny_purge", cur.DenyPurge)
	}
	return s, nil
}

// recovered is the position recovered from the stream's tail.
type recovered struct {
	// last is the offset of the last message stored per partition (partitions the
	// stream holds nothing of are absent).
	last map[int]int64
	// ids are the meta.ids stored from each partition at offsets at or after
	// last+1-overlap: the records the bridge reads again on resume and must skip.
	ids map[string]struct{}
	// scanned counts the stream messages read.
	scanned uint64
}

// recoverPositions reads the stream backwards from last, in chunks that double in
// size, until it knows for every partition its last stored offset and every message
// of the resume overlap, or it reaches the stream's start. Only the headers are
// read.
func (b *Bridge) recoverPositions(ctx context.Context, js jetstream.JetStream, first, last uint64, parts []int, overlap int64) (recovered, error) {
	rec := recovered{last: map[int]int64{}, ids: map[string]struct{}{}}
	if last == 0 || last < first {
		return rec, nil
	}
	want := map[int]bool{}
	for _, p := range parts {
		want[p] = true
	}
	done := map[int]bool{}
	hi, k := last, uint64(1024)
	for {
		lo := first
		if hi-first+1 > k {
			lo = hi - k + 1
		}
		chunk, err := b.scan(ctx, js, lo, hi)
		if err != nil {
			return rec, err
		}
		rec.scanned += hi - lo + 1
		for i := len(chunk) - 1; i >= 0; i-- {
			e := chunk[i]
			if !want[e.partition] || done[e.partition] {
				continue
			}
			lastOff, ok := rec.last[e.partition]
			if !ok {
				lastOff = e.offset
				rec.last[e.partition] = lastOff
			}
			if e.offset < lastOff+1-overlap {
				done[e.partition] = true
				continue
			}
			rec.ids[e.id] = struct{}{}
		}
		if len(done) == len(want) || lo == first {
			return rec, nil
		}
		hi, k = lo-1, k*2
	}
}

// stored is what recovery needs of one stream message.
type stored struct {
	partition int
	offset    int64
	id        string
}

// scan returns the messages of the bridge's topic between sequences lo and hi
// (inclusive), in stream order, reading headers only.
func (b *Bridge) scan(ctx context.Context, js jetstream.JetStream, lo, hi uint64) ([]stored, error) {
	cons, err := js.OrderedConsumer(ctx, b.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   lo,
		HeadersOnly:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s from sequence %d: %w", b.cfg.Stream, lo, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read stream %s from sequence %d: %w", b.cfg.Stream, lo, err)
	}
	defer it.Stop()
	var out []stored
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("read stream %s between sequences %d and %d: %w", b.cfg.Stream, lo, hi, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", b.cfg.Stream, err)
		}
		seq := md.Sequence.Stream
		if seq > hi {
			return out, nil
		}
		if e, ok := b.position(m.Headers()); ok {
			out = append(out, e)
		}
		if seq == hi {
			return out, nil
		}
	}
}

// position extracts the Kafka position of a stream message written for the
// bridge's topic.
func (b *Bridge) position(h map[string][]string) (stored, bool) {
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if get(wire.HeaderKafkaTopic) != b.cfg.Kafka.Topic {
		return stored{}, false
	}
	p, err1 := strconv.Atoi(get(wire.HeaderKafkaPartition))
	o, err2 := strconv.ParseInt(get(wire.HeaderKafkaOffset), 10, 64)
	if err1 != nil || err2 != nil {
		return stored{}, false
	}
	return stored{partition: p, offset: o, id: get(jetstream.MsgIDHeader)}, true
}
