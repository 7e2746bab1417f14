package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaGoAgainstTheStackBroker proves that kafka-go works against the Kafka
// version the stack runs (4.4.0): API versions, topic creation, produce with
// acks=all, the last offset of a partition, fetching the last record, and a
// consumer group, the operations wikiflow's stages rely on.
func TestKafkaGoAgainstTheStackBroker(t *testing.T) {
	addr := KafkaAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := conn.ApiVersions()
	conn.Close()
	if err != nil || len(versions) == 0 {
		t.Fatalf("ApiVersions: %v", err)
	}

	topic := Topic(t, addr, 3)
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("wiki%d", i%5)), Value: []byte(fmt.Sprintf("event %d", i)),
			Headers: []kafka.Header{{Key: "sse-id", Value: []byte(fmt.Sprint(i))}}})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}

	cl := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	req := map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1), kafka.LastOffsetOf(2)}}
	offs, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var total int64
	for _, p := range offs.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("partition %d: %v", p.Partition, p.Error)
		}
		total += p.LastOffset
		if p.LastOffset == 0 {
			continue
		}
		// The last record of the partition, as ingest reads it to resume.
		fr, err := cl.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p.Partition, Offset: p.LastOffset - 1, MaxBytes: 1 << 20})
		if err != nil || fr.Error != nil {
			t.Fatalf("fetch the last record of partition %d: %v %v", p.Partition, err, fr.Error)
		}
		// Kafka answers with whole batches: skip to the asked offset.
		var rec *kafka.Record
		for rec == nil || rec.Offset < p.LastOffset-1 {
			if rec, err = fr.Records.ReadRecord(); err != nil {
				t.Fatalf("read the last record of partition %d: %v", p.Partition, err)
			}
		}
		if rec.Offset != p.LastOffset-1 || rec.Headers[0].Key != "sse-id" {
			t.Fatalf("partition %d: last record at %d with headers %v", p.Partition, rec.Offset, rec.Headers)
		}
	}
	if total != 30 {
		t.Fatalf("the partitions hold %d records, want 30", total)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, GroupID: "g-" + topic, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	defer r.Close()
	seen := map[string]bool{}
	for len(seen) < 30 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consumer group read after %d: %v", len(seen), err)
		}
		seen[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}
