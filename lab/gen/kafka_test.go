package gen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/valyala/fastjson"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

func checkRecord(t *testing.T, got *Truth, partOf map[string]int, p int, m kafka.Message) {
	t.Helper()
	countRaw(t, got, m.Value)
	ev, _ := event.Parse(m.Value)
	if string(m.Key) != ev.Wiki {
		t.Fatalf("key %q, wiki %q", m.Key, ev.Wiki)
	}
	if q, ok := partOf[ev.Wiki]; ok && q != p {
		t.Fatalf("wiki %s in partitions %d and %d: records are not partitioned by key", ev.Wiki, q, p)
	}
	partOf[ev.Wiki] = p
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	if h[wire.HeaderMetaID] != ev.ID {
		t.Fatalf("header %s = %q, meta.id %q", wire.HeaderMetaID, h[wire.HeaderMetaID], ev.ID)
	}
	if head, err := event.ParseHead(m.Value); err != nil || h[wire.HeaderSubject] != head.Subject(wire.SubjectPrefix) {
		t.Fatalf("header %s = %q, want %q (%v)", wire.HeaderSubject, h[wire.HeaderSubject], head.Subject(wire.SubjectPrefix), err)
	}
	sseID, err := fastjson.Parse(h[wire.HeaderSSEID])
	if err != nil || sseID.GetInt64("0", "timestamp") != ev.Time.UnixMilli() {
		t.Fatalf("header %s = %q, want a Wikimedia id dated %d (%v)", wire.HeaderSSEID, h[wire.HeaderSSEID], ev.Time.UnixMilli(), err)
	}
	ns, err := strconv.ParseInt(h[wire.HeaderReceived], 10, 64)
	if err != nil || time.Since(time.Unix(0, ns)) > 10*time.Minute || time.Until(time.Unix(0, ns)) > time.Minute {
		t.Fatalf("header %s = %q, want a recent Unix ns time", wire.HeaderReceived, h[wire.HeaderReceived])
	}
}

// readBack reads every record of topic and counts it like countRaw, checking the
// key and headers of each against its value.
func readBack(t *testing.T, addr, topic string, partitions int, seed int64) *Truth {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := NewTruth(seed)
	partOf := map[string]int{}
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			conn.Close()
			t.Fatal(err)
		}
		if _, err := conn.Seek(0, kafka.SeekAbsolute); err != nil {
			conn.Close()
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		for next := int64(0); next < last; {
			batch := conn.ReadBatch(1, 10<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				next = m.Offset + 1
				checkRecord(t, got, partOf, p, m)
			}
			if err := batch.Close(); err != nil {
				conn.Close()
				t.Fatalf("partition %d at offset %d of %d: %v", p, next, last, err)
			}
		}
		conn.Close()
	}
	return got
}

func kafkaWriterFor(t *testing.T, addr, topic string) *kafka.Writer {
	t.Helper()
	w, err := NewKafkaWriter(KafkaConfig{Kafka: brokers.Kafka{Brokers: []string{addr}, Topic: topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWriteKafkaCountsMatchTheTopic(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	topic := testenv.Topic(t, addr, 3)
	w := kafkaWriterFor(t, addr, topic)
	g := New(DefaultProfile(), 77)
	last := 0
	truth, err := WriteKafka(t.Context(), w, g, 5000, 0, func(d int) { last = d })
	if err != nil {
		t.Fatal(err)
	}
	if truth.Events != 5000 || last != 5000 {
		t.Fatalf("truth counts %d events, progress ended at %d; want 5000", truth.Events, last)
	}
	// A rate-limited continuation of the same sequence.
	more, err := WriteKafka(t.Context(), w, g, 300, 3000, nil)
	if err != nil {
		t.Fatal(err)
	}
	truth.Events += more.Events
	truth.Bot += more.Bot
	truth.Human += more.Human
	for k, v := range more.PerDomain {
		truth.PerDomain[k] += v
	}
	for k, v := range more.PerType {
		truth.PerType[k] += v
	}
	compareTruth(t, readBack(t, addr, topic, 3, 77), truth)
}

func TestWriteKafkaStopsOnCancel(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	topic := testenv.Topic(t, addr, 1)
	w := kafkaWriterFor(t, addr, topic)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	truth, err := WriteKafka(ctx, w, New(DefaultProfile(), 1), 100, 0, nil)
	if !errors.Is(err, context.Canceled) || truth.Events != 0 {
		t.Fatalf("cancelled WriteKafka: %d events, error %v; want 0 and context.Canceled", truth.Events, err)
	}
}

func TestRunToKafkaWritesTheTruth(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	topic := testenv.Topic(t, addr, 2)
	cfg := DefaultConfig()
	cfg.Count = 2500
	cfg.Seed = 8
	cfg.TruthFile = t.TempDir() + "/truth.json"
	cfg.Kafka.Brokers = []string{addr}
	cfg.Kafka.Topic = topic
	if err := Run(t.Context(), cfg, io.Discard, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	truth, err := ReadTruth(cfg.TruthFile)
	if err != nil {
		t.Fatal(err)
	}
	if truth.Events != 2500 {
		t.Fatalf("truth file counts %d events, want 2500", truth.Events)
	}
	compareTruth(t, readBack(t, addr, topic, 2, 8), truth)
}
