package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// TestBuildFilesEventsWhereTheyAreCounted checks that the subject and Nats-Msg-Id
// the bridge gives a record are what the aggregate's decoder (event.Parse) reads
// from the same bytes, and that the domain it files by is what encoding/json
// decodes: on every recorded event and on events with odd tokens and invalid
// UTF-8, which the bridge once replaced differently ("x\xff\xfe.org" filed as
// x\uFFFD.org while counted as x\uFFFD\uFFFD.org).
func TestBuildFilesEventsWhereTheyAreCounted(t *testing.T) {
	b, err := New(DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	for _, rec := range recording.Events() {
		raws = append(raws, rec.Data)
	}
	for _, s := range []string{
		"{\"meta\":{\"id\":\"i1\",\"domain\":\"x\xff\xfe.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\"type\":\"edit\"}",
		"{\"meta\":{\"id\":\"i\xff\xfe\",\"domain\":\"a\xfe.org\",\"dt\":\"2024-01-01T00:00:00Z\"},\"wiki\":\"w\xff\xfe\",\"type\":\"t\xff\xfe\"}",
		`{"meta":{"id":"x\u00e9","domain":"d\u00e9.org","dt":"2024-01-01T02:00:00+02:00"},"wiki":"w\u00e9","type":"n\u00e9w"}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00.5Z"},"wiki":"we ird.wiki","type":"ed*it"}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"2024-01-01T00:00:00Z"},"wiki":7,"type":["edit"]}`,
	} {
		raws = append(raws, []byte(s))
	}
	for _, raw := range raws {
		want, err := event.Parse(raw)
		if err != nil {
			t.Fatalf("%.80q: %v", raw, err)
		}
		r := b.build(kafka.Message{Value: raw})
		var ref struct{ Meta struct{ Domain string } }
		if err := json.Unmarshal(raw, &ref); err != nil {
			t.Fatal(err)
		}
		head, err := event.ParseHead(raw)
		if err != nil {
			t.Fatalf("%.80q: ParseHead: %v", raw, err)
		}
		if r.skip || r.msg.Subject != want.Subject(wire.SubjectPrefix) || head.Domain != want.Domain ||
			head.Domain != ref.Meta.Domain || r.id != want.ID || !head.Time.Equal(want.Time) {
			t.Errorf("%.80q: filed as %q with domain %q, id %q, time %s; counted as %q, domain %q (encoding/json %q), id %q, time %s",
				raw, r.msg.Subject, head.Domain, r.id, head.Time,
				want.Subject(wire.SubjectPrefix), want.Domain, ref.Meta.Domain, want.ID, want.Time)
		}
	}
}

// TestBuildSkipsWhatTheAggregateRejects checks that a record the aggregate's
// decoder rejects is skipped and counted as a canary or as invalid.
func TestBuildSkipsWhatTheAggregateRejects(t *testing.T) {
	b, err := New(DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`{"meta":{"domain":"canary","dt":"2024-01-01T00:00:00Z"}}`,
		`{"meta":`, `[1,2]`, `{"type":"edit"}`, `{"meta":"x"}`,
		`{"meta":{"domain":"a.org","dt":"2024-01-01T00:00:00Z"}}`,
		`{"meta":{"id":"x","dt":"2024-01-01T00:00:00Z"}}`,
		`{"meta":{"id":"x","domain":"a.org"}}`,
		`{"meta":{"id":"x","domain":"a.org","dt":"yesterday"}}`,
	} {
		_, perr := event.Parse([]byte(s))
		c0, i0 := b.stats.Canaries.Load(), b.stats.Invalid.Load()
		r := b.build(kafka.Message{Value: []byte(s)})
		canary, invalid := b.stats.Canaries.Load()-c0, b.stats.Invalid.Load()-i0
		if !r.skip || errors.Is(perr, event.ErrCanary) != (canary == 1) || errors.Is(perr, event.ErrInvalid) != (invalid == 1) {
			t.Errorf("%s: skip %v, canaries +%d, invalid +%d; event.Parse says %v", s, r.skip, canary, invalid, perr)
		}
	}
}

// BenchmarkBuild measures turning one recorded Kafka record into the message the
// bridge publishes: the routing (the subject and meta.id), the size check and the
// headers. "parse" records carry the headers of an ingest without the subject
// header, so the bridge parses each value (event.ParseHead); "header" records
// carry the subject header ingest writes now, so it routes by the header.
//
// On the 2-core development machine (median of 4 runs): parse about 1,590 ns,
// 860 B, 7 allocations; header about 360 ns, 811 B, 6 allocations.
func BenchmarkBuild(b *testing.B) {
	br, err := New(DefaultConfig(), testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, withSubject := range []bool{false, true} {
		name := "parse"
		if withSubject {
			name = "header"
		}
		msgs := ingestRecords(b, withSubject)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if r := br.build(msgs[i%len(msgs)]); r.skip {
					b.Fatal("recorded event skipped")
				}
			}
		})
	}
}

// ingestRecords returns the recorded events as ingest writes them to Kafka, with
// or without the subject header.
func ingestRecords(t testing.TB, withSubject bool) []kafka.Message {
	t.Helper()
	evs := events(t)
	msgs := make([]kafka.Message, len(evs))
	for i, s := range evs {
		headers := []kafka.Header{
			{Key: wire.HeaderSSEID, Value: []byte(fmt.Sprintf(`[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":%d}]`, i))},
			{Key: wire.HeaderMetaID, Value: []byte(s.ev.ID)},
		}
		if withSubject {
			headers = append(headers, kafka.Header{Key: wire.HeaderSubject, Value: []byte(s.ev.Subject(wire.SubjectPrefix))})
		}
		headers = append(headers, kafka.Header{Key: wire.HeaderReceived, Value: []byte(strconv.Itoa(1_700_000_000_000_000_000 + i))})
		msgs[i] = kafka.Message{Topic: wire.DefaultTopic, Partition: i % 3, Offset: int64(i), Key: []byte(s.ev.Wiki), Value: s.raw, Headers: headers}
	}
	return msgs
}
