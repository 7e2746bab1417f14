package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/wire"
)

func TestBuild(t *testing.T) {
	b, err := New(DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	real := events(t)[0]
	// A valid event just over the size limit.
	oversize := append(real.raw[:len(real.raw)-1:len(real.raw)-1], `,"pad":"`...)
	oversize = append(oversize, bytes.Repeat([]byte("x"), event.MaxSize)...)
	oversize = append(oversize, `"}`...)
	tests := []struct {
		name            string
		value           []byte
		headers         []kafka.Header
		skip            bool
		canary, invalid int64
		id, subject     string
		received        string
	}{
		{
			name:     "event with ingest headers",
			value:    real.raw,
			headers:  []kafka.Header{{Key: wire.HeaderMetaID, Value: []byte("from-header")}, {Key: wire.HeaderReceived, Value: []byte("123")}},
			id:       "from-header",
			subject:  real.ev.Subject(wire.SubjectPrefix),
			received: "123",
		},
		{
			name:    "event without headers",
			value:   real.raw,
			id:      real.ev.ID,
			subject: real.ev.Subject(wire.SubjectPrefix),
		},
		{
			name:    "odd tokens are sanitised",
			value:   []byte(`{"meta":{"id":"x1","domain":"a.b","dt":"2024-01-02T03:04:05.678Z"},"wiki":"we ird.wiki","type":"ed*it"}`),
			id:      "x1",
			subject: "wikimedia.recentchange.we_ird_wiki.ed_it",
		},
		{
			name:    "subject header routes without parsing",
			value:   real.raw,
			headers: []kafka.Header{{Key: wire.HeaderMetaID, Value: []byte("from-header")}, {Key: wire.HeaderSubject, Value: []byte(wire.SubjectPrefix + ".otherwiki.log")}},
			id:      "from-header",
			subject: wire.SubjectPrefix + ".otherwiki.log",
		},
		{
			name:    "subject header without meta-id is not trusted",
			value:   real.raw,
			headers: []kafka.Header{{Key: wire.HeaderSubject, Value: []byte(wire.SubjectPrefix + ".otherwiki.log")}},
			id:      real.ev.ID,
			subject: real.ev.Subject(wire.SubjectPrefix),
		},
		{
			name:    "subject header over an unparsable value is used",
			value:   []byte(`{"meta":`),
			headers: []kafka.Header{{Key: wire.HeaderMetaID, Value: []byte("m")}, {Key: wire.HeaderSubject, Value: []byte(wire.SubjectPrefix + ".w.t")}},
			id:      "m",
			subject: wire.SubjectPrefix + ".w.t",
		},
		{
			name:    "oversize value with a subject header",
			value:   oversize,
			headers: []kafka.Header{{Key: wire.HeaderMetaID, Value: []byte("m")}, {Key: wire.HeaderSubject, Value: []byte(wire.SubjectPrefix + ".w.t")}},
			skip:    true, invalid: 1,
		},
		{name: "canary", value: []byte(`{"meta":{"domain":"canary","id":"c"}}`), skip: true, canary: 1},
		{name: "not json", value: []byte(`{"meta":`), skip: true, invalid: 1},
		{name: "no meta.dt", value: []byte(`{"meta":{"id":"x","domain":"d"}}`), skip: true, invalid: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c0, i0 := b.stats.Canaries.Load(), b.stats.Invalid.Load()
			r := b.build(kafka.Message{Topic: "tp", Partition: 2, Offset: 41, Value: tt.value, Headers: tt.headers})
			if got := b.stats.Canaries.Load() - c0; got != tt.canary {
				t.Errorf("canaries +%d, want +%d", got, tt.canary)
			}
			if got := b.stats.Invalid.Load() - i0; got != tt.invalid {
				t.Errorf("invalid +%d, want +%d", got, tt.invalid)
			}
			if r.skip != tt.skip || r.partition != 2 || r.offset != 41 {
				t.Fatalf("record %+v, want skip=%v at 2/41", r, tt.skip)
			}
			if tt.skip {
				return
			}
			if r.id != tt.id || r.msg.Subject != tt.subject || string(r.msg.Data) != string(tt.value) {
				t.Errorf("id %q subject %q, want %q %q (payload equal: %v)", r.id, r.msg.Subject, tt.id, tt.subject, string(r.msg.Data) == string(tt.value))
			}
			h := r.msg.Header
			want := map[string]string{
				jetstream.MsgIDHeader:     tt.id,
				wire.HeaderKafkaTopic:     "tp",
				wire.HeaderKafkaPartition: "2",
				wire.HeaderKafkaOffset:    "41",
				wire.HeaderNATSReceived:   tt.received,
				HeaderBridge:              b.Instance(),
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
				}
			}
			for k := range h {
				if want[k] == "" {
					t.Errorf("header %s = %q: no later hop reads it", k, h.Get(k))
				}
			}
		})
	}
}

// TestBuildDistrustsMalformedSubjects checks that a subject header that is not
// one ParseHead could give is ignored and the record parsed.
func TestBuildDistrustsMalformedSubjects(t *testing.T) {
	b, err := New(DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	real := events(t)[0]
	want := real.ev.Subject(wire.SubjectPrefix)
	for _, s := range []string{
		"", "other.prefix.enwiki.edit", wire.SubjectPrefix, wire.SubjectPrefix + ".enwiki",
		wire.SubjectPrefix + ".enwiki.edit.more", wire.SubjectPrefix + "..edit", wire.SubjectPrefix + ".enwiki.",
		wire.SubjectPrefix + ".en wiki.edit", wire.SubjectPrefix + ".enwiki.*", wire.SubjectPrefix + ".>",
		wire.SubjectPrefix + "x.enwiki.edit",
	} {
		headers := []kafka.Header{{Key: wire.HeaderMetaID, Value: []byte("id")}, {Key: wire.HeaderSubject, Value: []byte(s)}}
		r := b.build(kafka.Message{Value: real.raw, Headers: headers})
		if r.skip || r.msg.Subject != want || r.id != "id" {
			t.Errorf("header %q: skip %v, subject %q, id %q; want %q, id", s, r.skip, r.msg.Subject, r.id, want)
		}
	}
	if n := b.badSubjects.Load(); n != 11 {
		t.Errorf("%d malformed subject headers counted, want 11", n)
	}
}

func TestFencedError(t *testing.T) {
	var err error = &FencedError{Stream: "WIKIMEDIA", Expected: 10, Found: 11, Partition: "2", Offset: "77"}
	want := "another bridge is writing to stream WIKIMEDIA (expected last sequence 10, found 11 from partition 2 offset 77); refusing to continue"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	if !errors.Is(fmt.Errorf("run: %w", err), ErrFenced) {
		t.Error("not ErrFenced")
	}
}

func TestIsWrongLastSeq(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, true},
		{fmt.Errorf("x: %w", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}), true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
		{jetstream.ErrAsyncPublishTimeout, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := isWrongLastSeq(tt.err); got != tt.want {
			t.Errorf("isWrongLastSeq(%v) = %v", tt.err, got)
		}
	}
}

func TestRingKeepsOrderAcrossWrap(t *testing.T) {
	q := newRing(3)
	recs := make([]*record, 7)
	for i := range recs {
		recs[i] = &record{offset: int64(i)}
	}
	var got []int64
	next := 0
	for next < len(recs) || q.len() > 0 {
		for q.len() < 3 && next < len(recs) {
			q.push(recs[next])
			next++
		}
		if q.at(q.len()-1).r != recs[next-1] {
			t.Fatalf("last entry is offset %d, want %d", q.at(q.len()-1).r.offset, next-1)
		}
		got = append(got, q.front().r.offset)
		q.pop()
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6]" {
		t.Errorf("popped %v", got)
	}
	if q.front() != nil {
		t.Error("front of an empty ring is not nil")
	}
	q.push(recs[0])
	q.push(recs[1])
	q.clear()
	if q.len() != 0 || q.front() != nil {
		t.Errorf("cleared ring holds %d entries", q.len())
	}
}
