package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// sent is one record the test produced to Kafka.
type sent struct {
	raw      []byte
	ev       event.Event
	received string
}

// env is one test's brokers: a fresh topic and a fresh embedded NATS server.
type env struct {
	t     testing.TB
	addr  string
	topic string
	url   string
	sent  map[string]sent // by meta.id
	seq   int
}

func newEnv(t testing.TB) *env {
	t.Helper()
	addr := testenv.KafkaAddr(t)
	url, _ := testenv.NATS(t)
	return &env{t: t, addr: addr, topic: testenv.Topic(t, addr, 3), url: url, sent: map[string]sent{}}
}

// events returns the recorded events, parsed.
func events(t testing.TB) []sent {
	t.Helper()
	var out []sent
	for _, e := range recording.Events() {
		ev, err := event.Parse(e.Data)
		if err != nil {
			t.Fatalf("recording line %d: %v", e.Line, err)
		}
		out = append(out, sent{raw: e.Data, ev: ev})
	}
	if len(out) != 2723 {
		t.Fatalf("recording has %d events, want 2723", len(out))
	}
	return out
}

// copies returns n (at most 20) copies of evs, copy i with meta.ids whose first
// character is replaced by the letter 'g'+i, so that every copy is a new set of
// events, distinct from evs (whose ids are hexadecimal) too.
func copies(evs []sent, n int) []sent {
	out := make([]sent, 0, n*len(evs))
	for copyN := range n {
		for _, s := range evs {
			newID := string(rune('g'+copyN)) + s.ev.ID[1:]
			s.raw = bytes.Replace(s.raw, []byte(s.ev.ID), []byte(newID), 1)
			s.ev.ID = newID
			out = append(out, s)
		}
	}
	return out
}

// produce writes the events to the topic as ingest does: key = wiki, value = the raw
// bytes, headers meta-id, sse-id, received-ns and, on every other record, subject
// (the others are as an older ingest wrote them, so both ways of routing run).
func (e *env) produce(evs []sent) {
	e.t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(e.addr),
		Topic:        e.topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    500,
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(evs))
	for i, s := range evs {
		e.seq++
		recv := strconv.FormatInt(1_700_000_000_000_000_000+int64(e.seq), 10)
		if prev, ok := e.sent[s.ev.ID]; ok {
			recv = prev.received // a re-sent event carries what it carried before
		}
		s.received = recv
		e.sent[s.ev.ID] = s
		msgs[i] = kafka.Message{
			Key:   []byte(s.ev.Wiki),
			Value: s.raw,
			Headers: []kafka.Header{
				{Key: wire.HeaderMetaID, Value: []byte(s.ev.ID)},
				{Key: wire.HeaderSSEID, Value: []byte(fmt.Sprintf(`[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":%d}]`, e.seq))},
				{Key: wire.HeaderReceived, Value: []byte(recv)},
			},
		}
		if e.seq%2 == 0 {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: wire.HeaderSubject, Value: []byte(s.ev.Subject(wire.SubjectPrefix))})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce %d records: %v", len(msgs), err)
	}
}

func (e *env) config() Config {
	c := DefaultConfig()
	c.Kafka.Brokers = []string{e.addr}
	c.Kafka.Topic = e.topic
	c.NATS.URL = e.url
	c.AckTimeout = 2 * time.Second
	c.ProgressInterval = time.Second
	return c
}

// running is a bridge running in the background.
type running struct {
	b    *Bridge
	stop context.CancelFunc
	done chan error
}

// missingTopicConfig is a bridge on a fresh NATS server whose Kafka topic does not
// exist.
func missingTopicConfig(t testing.TB) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = []string{testenv.KafkaAddr(t)}
	cfg.Kafka.Topic = "test-missing-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	cfg.NATS.URL, _ = testenv.NATS(t)
	return cfg
}

func start(t testing.TB, cfg Config) *running {
	t.Helper()
	b, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	return r
}

// halt cancels the bridge and returns what Run returned.
func (r *running) halt(t testing.TB) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancellation")
		return nil
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func jsFor(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitFor polls cond until it holds; the deadline only keeps a broken test from
// hanging.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamMsgs returns the stream's state, or zero when it does not exist yet.
func streamMsgs(js jetstream.JetStream, name string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// waitBridged waits until the bridge has recovered its position, the stream holds
// n messages, the bridge has nothing left to read and has settled all it read.
func waitBridged(t testing.TB, js jetstream.JetStream, r *running, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages in the stream and no lag", n), func() bool {
		r.b.updateLag()
		st := r.b.Stats()
		settled := st.Published.Load() + st.Duplicates.Load() + st.AlreadyBridged.Load() + st.Canaries.Load() + st.Invalid.Load()
		return len(r.b.LastOffsets()) > 0 && streamMsgs(js, wire.DefaultStream) >= n &&
			st.KafkaLag.Load() == 0 && settled == st.Read.Load()
	})
}

// overlap returns how many records a restarted bridge reads again.
func (e *env) overlap(cfg Config) int64 {
	var n int64
	for _, recs := range e.kafkaRecords() {
		n += min(int64(len(recs)), int64(cfg.MaxInFlight))
	}
	return n
}

// allMsgs reads every message of the stream.
func allMsgs(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.LastSeq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// kafkaRecords reads the whole topic back: partition -> offset -> record.
func (e *env) kafkaRecords() map[int]map[int64]kafka.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[int]map[int64]kafka.Message{}
	for p := 0; p < 3; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", e.addr, e.topic, p)
		if err != nil {
			e.t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out[p] = map[int64]kafka.Message{}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.addr}, Topic: e.topic, Partition: p, MaxWait: 250 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				e.t.Fatalf("read back partition %d: %v", p, err)
			}
			out[p][m.Offset] = m
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// verify checks that the stream holds every produced event exactly once, on its
// subject, byte for byte, with the headers the bridge must write.
func (e *env) verify(js jetstream.JetStream) {
	t := e.t
	t.Helper()
	msgs := allMsgs(t, js)
	recs := e.kafkaRecords()
	seen := map[string]int{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		seen[id]++
		want, ok := e.sent[id]
		if !ok {
			t.Errorf("seq %d: unexpected Nats-Msg-Id %q", m.Sequence, id)
			continue
		}
		if sub := want.ev.Subject(wire.SubjectPrefix); m.Subject != sub {
			t.Errorf("seq %d: subject %q, want %q", m.Sequence, m.Subject, sub)
		}
		if string(m.Data) != string(want.raw) {
			t.Errorf("seq %d (%s): payload differs from the produced bytes", m.Sequence, id)
		}
		h := func(k string) string { return m.Header.Get(k) }
		if h(wire.HeaderKafkaTopic) != e.topic {
			t.Errorf("seq %d: %s = %q, want %q", m.Sequence, wire.HeaderKafkaTopic, h(wire.HeaderKafkaTopic), e.topic)
		}
		p, _ := strconv.Atoi(h(wire.HeaderKafkaPartition))
		o, err := strconv.ParseInt(h(wire.HeaderKafkaOffset), 10, 64)
		if err != nil {
			t.Errorf("seq %d: bad %s %q", m.Sequence, wire.HeaderKafkaOffset, h(wire.HeaderKafkaOffset))
		} else if rec, ok := recs[p][o]; !ok {
			t.Errorf("seq %d: no Kafka record at partition %d offset %d", m.Sequence, p, o)
		} else if string(rec.Value) != string(m.Data) || kafkaHeader(rec, wire.HeaderMetaID) != id {
			t.Errorf("seq %d: Kafka record at partition %d offset %d is another event", m.Sequence, p, o)
		}
		if h(wire.HeaderNATSReceived) != want.received {
			t.Errorf("seq %d: %s = %q, want %q", m.Sequence, wire.HeaderNATSReceived, h(wire.HeaderNATSReceived), want.received)
		}
	}
	for id := range e.sent {
		if seen[id] != 1 {
			t.Errorf("event %s stored %d times, want once", id, seen[id])
		}
	}
	if len(msgs) != len(e.sent) {
		t.Errorf("stream holds %d messages, want %d", len(msgs), len(e.sent))
	}
}

// foreign publishes a message the way a second writer would.
func foreign(t testing.TB, js jetstream.JetStream, partition, offset string) {
	t.Helper()
	m := nats.NewMsg(wire.SubjectPrefix + ".testwiki.edit")
	m.Header.Set(wire.HeaderKafkaTopic, "elsewhere")
	m.Header.Set(wire.HeaderKafkaPartition, partition)
	m.Header.Set(wire.HeaderKafkaOffset, offset)
	m.Data = []byte(`{}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}
