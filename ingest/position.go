package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// HeaderResumeID is a header ingest adds to every record besides those of
// internal/wire: the SSE id of the last event of the batch written before this
// record's batch. That position was durable when the record was written, whatever
// happened to the rest of its own batch, so a restart resumes from it and loses
// nothing even when a crash left a batch written to some partitions only. It is
// empty on the first batch written after a start without a position.
const HeaderResumeID = "resume-id"

// HeaderOriginalSize is a header of dead-letter records: the size in bytes of the
// rejected data when it had to be cut. A "~" prefix marks a size measured on the
// stream (within 64 KiB), for frames too large to be kept whole.
const HeaderOriginalSize = "dlq-original-size"

// topicMaxBytes is the max.message.bytes given to the topics ingest creates: room
// for the largest accepted event and its headers.
func topicMaxBytes(maxEvent int) int { return maxEvent + 2*lineSlack }

// ensureTopics creates the events and dead-letter topics when they do not exist and
// returns the partitions of the events topic.
func ensureTopics(ctx context.Context, cl *kafka.Client, cfg Config) ([]int, error) {
	topics := []string{cfg.Kafka.Topic, cfg.DeadLetterTopic}
	for attempt := 0; ; attempt++ {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err != nil {
			return nil, fmt.Errorf("read metadata of %v: %w", topics, err)
		}
		var missing []string
		var parts []int
		notReady := false
		for _, t := range md.Topics {
			switch {
			case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
				missing = append(missing, t.Name)
			case errors.Is(t.Error, kafka.LeaderNotAvailable):
				notReady = true
			case t.Error != nil:
				return nil, fmt.Errorf("metadata of topic %s: %w", t.Name, t.Error)
			case t.Name == cfg.Kafka.Topic:
				for _, p := range t.Partitions {
					parts = append(parts, p.ID)
				}
			}
		}
		if len(missing) == 0 && !notReady && len(parts) > 0 {
			slices.Sort(parts)
			return parts, nil
		}
		if attempt >= 50 {
			return nil, fmt.Errorf("topics %v are not ready", topics)
		}
		if err := createTopics(ctx, cl, cfg, missing); err != nil {
			return nil, err
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

func createTopics(ctx context.Context, cl *kafka.Client, cfg Config, names []string) error {
	var req kafka.CreateTopicsRequest
	entries := []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(topicMaxBytes(cfg.MaxEventSize))}}
	if cfg.MinInsyncReplicas > 0 {
		entries = append(entries, kafka.ConfigEntry{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(cfg.MinInsyncReplicas)})
	}
	for _, name := range names {
		if name == "" {
			continue
		}
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             name,
			NumPartitions:     cfg.Partitions,
			ReplicationFactor: cfg.ReplicationFactor,
			ConfigEntries:     entries,
		})
	}
	if len(req.Topics) == 0 {
		return nil
	}
	resp, err := cl.CreateTopics(ctx, &req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return nil
}

// record is what ingest reads back of one of its records.
type record struct {
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// received returns the record's HeaderReceived as Unix nanoseconds (0 if absent).
func (r record) received() int64 {
	n, _ := strconv.ParseInt(r.Headers[wire.HeaderReceived], 10, 64)
	return n
}

// partitionBounds returns the first and the next offset of each partition.
func partitionBounds(ctx context.Context, cl *kafka.Client, topic string, parts []int) (first, next map[int]int64, err error) {
	query := func(at int64) (map[int]int64, error) {
		reqs := make([]kafka.OffsetRequest, len(parts))
		for i, p := range parts {
			reqs[i] = kafka.OffsetRequest{Partition: p, Timestamp: at}
		}
		resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		out := map[int]int64{}
		for _, po := range resp.Topics[topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			if at == kafka.FirstOffset {
				out[po.Partition] = po.FirstOffset
			} else {
				out[po.Partition] = po.LastOffset
			}
		}
		return out, nil
	}
	if first, err = query(kafka.FirstOffset); err != nil {
		return nil, nil, err
	}
	if next, err = query(kafka.LastOffset); err != nil {
		return nil, nil, err
	}
	return first, next, nil
}

// readRange calls fn for every record of topic/partition with from <= offset < to.
func readRange(ctx context.Context, cl *kafka.Client, topic string, partition int, from, to int64, fn func(record)) error {
	for off := from; off < to; {
		resp, err := cl.Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: partition, Offset: off,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, off, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, off, resp.Error)
		}
		progressed := false
		for {
			rec, err := resp.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s/%d at %d: %w", topic, partition, off, err)
			}
			if rec.Offset < off {
				continue
			}
			if rec.Offset >= to {
				break
			}
			r := record{Partition: partition, Offset: rec.Offset, Headers: map[string]string{}}
			if r.Key, err = readBytes(rec.Key); err == nil {
				r.Value, err = readBytes(rec.Value)
			}
			if err != nil {
				return fmt.Errorf("read %s/%d at %d: %w", topic, partition, rec.Offset, err)
			}
			for _, h := range rec.Headers {
				r.Headers[h.Key] = string(h.Value)
			}
			fn(r)
			off = rec.Offset + 1
			progressed = true
		}
		if !progressed {
			// Nothing readable below to (e.g. only control records): done.
			return nil
		}
	}
	return nil
}

func readBytes(b interface {
	io.Reader
	Len() int
}) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	out := make([]byte, b.Len())
	_, err := io.ReadFull(b, out)
	return out, err
}

// position is where the feed resumes and what was recently published.
type position struct {
	// lastID is the SSE id to send as Last-Event-ID; empty when the topic is empty.
	lastID string
	// recent are the meta.ids of the newest records, oldest first.
	recent []string
	// records is how many records the topic holds.
	records int64
}

// readPosition reads the tail of every partition of the events topic: the newest
// record (greatest HeaderReceived) gives the position, and up to window records in
// all seed the duplicate check.
func readPosition(ctx context.Context, cl *kafka.Client, topic string, parts []int, window int) (position, error) {
	var pos position
	first, next, err := partitionBounds(ctx, cl, topic, parts)
	if err != nil {
		return pos, err
	}
	perPartition := int64(max(1, window/max(1, len(parts))))
	var tail []record
	for _, p := range parts {
		if next[p] <= first[p] {
			continue
		}
		pos.records += next[p] - first[p]
		from := max(first[p], next[p]-perPartition)
		err := readRange(ctx, cl, topic, p, from, next[p], func(r record) {
			r.Value = nil // only headers are needed
			tail = append(tail, r)
		})
		if err != nil {
			return pos, err
		}
	}
	if len(tail) == 0 {
		return pos, nil
	}
	slices.SortStableFunc(tail, func(a, b record) int {
		if c := compareInt(a.received(), b.received()); c != 0 {
			return c
		}
		return compareInt(a.Offset, b.Offset)
	})
	for _, r := range tail {
		if id := r.Headers[wire.HeaderMetaID]; id != "" {
			pos.recent = append(pos.recent, id)
		}
	}
	newest := tail[len(tail)-1]
	pos.lastID = newest.Headers[HeaderResumeID]
	if pos.lastID == "" {
		pos.lastID = newest.Headers[wire.HeaderSSEID]
	}
	return pos, nil
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
