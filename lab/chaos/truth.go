package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// RecordingTruth counts the bundled recording per meta.domain, independently of
// the pipeline's parser: encoding/json over the NDJSON lines, canary events
// dropped, repeated meta.ids counted once. It also returns the meta.ids counted.
func RecordingTruth() (map[string]int64, map[string]bool, error) {
	counts := map[string]int64{}
	ids := map[string]bool{}
	for _, rec := range recording.Events() {
		var ev struct {
			Meta struct {
				ID     string `json:"id"`
				Domain string `json:"domain"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(rec.Data, &ev); err != nil {
			return nil, nil, fmt.Errorf("recording line %d: %w", rec.Line, err)
		}
		if ev.Meta.Domain == "canary" || ev.Meta.ID == "" || ids[ev.Meta.ID] {
			continue
		}
		ids[ev.Meta.ID] = true
		counts[ev.Meta.Domain]++
	}
	return counts, ids, nil
}

// topicMetaIDs reads every record of topic and returns the set of their meta.id
// headers and the number of records.
func topicMetaIDs(ctx context.Context, addr, topic string) (map[string]bool, int64, error) {
	ids := map[string]bool{}
	var n int64
	err := eachPartition(ctx, addr, topic, func(c *kafka.Conn, first, last int64) error {
		for off := first; off < last; {
			if _, err := c.Seek(off, kafka.SeekAbsolute); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			batch := c.ReadBatch(1, 32<<20)
			before := off
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				off = m.Offset + 1
				n++
				for _, h := range m.Headers {
					if h.Key == "meta-id" {
						ids[string(h.Value)] = true
					}
				}
			}
			if err := batch.Close(); err != nil && off == before {
				return err
			}
			if off == before {
				return fmt.Errorf("no progress reading %s at offset %d", topic, off)
			}
		}
		return nil
	})
	return ids, n, err
}

// topicRecords returns how many records topic holds (0 when it does not exist).
func topicRecords(ctx context.Context, addr, topic string) (int64, error) {
	var n int64
	err := eachPartition(ctx, addr, topic, func(_ *kafka.Conn, first, last int64) error {
		n += last - first
		return nil
	})
	if err == errNoTopic {
		return 0, nil
	}
	return n, err
}

var errNoTopic = fmt.Errorf("topic does not exist")

// eachPartition calls fn with a connection to the leader of each partition of
// topic and the partition's first and next offsets; addr may list several
// brokers, comma-separated (the first that answers is asked).
func eachPartition(ctx context.Context, addr, topic string, fn func(c *kafka.Conn, first, last int64) error) error {
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	var conn *kafka.Conn
	var err error
	for _, a := range strings.Split(addr, ",") {
		if conn, err = d.DialContext(ctx, "tcp", a); err == nil {
			addr = a
			break
		}
	}
	if err != nil {
		return err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		if err == kafka.UnknownTopicOrPartition {
			return errNoTopic
		}
		return fmt.Errorf("partitions of %s: %w", topic, err)
	}
	if len(parts) == 0 {
		return errNoTopic
	}
	for _, p := range parts {
		lc, err := d.DialLeader(ctx, "tcp", addr, topic, p.ID)
		if err != nil {
			return fmt.Errorf("leader of %s/%d: %w", topic, p.ID, err)
		}
		lc.SetDeadline(time.Now().Add(30 * time.Second))
		first, last, err := lc.ReadOffsets()
		if err == nil {
			err = fn(lc, first, last)
		}
		lc.Close()
		if err != nil {
			return fmt.Errorf("%s/%d: %w", topic, p.ID, err)
		}
	}
	return nil
}
