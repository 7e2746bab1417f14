package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wikiflow/wikiflow/ingest"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// readRecord is a Kafka record as a client other than kafka-go read it.
type readRecord struct {
	partition int32
	key       []byte
	value     []byte
	headers   map[string][]string
	time      time.Time
}

// ingestRun is a `wikiflow ingest` run of the recording into fresh topics.
type ingestRun struct {
	addr, topic string
	events      []feedEvent
	want        map[string]feedEvent // by meta.id: the events that must be in the topic
	start, end  time.Time
}

// ingestRecording runs `wikiflow ingest` from a test feed of the recording into
// a fresh topic of the real Kafka until franz-go has read every expected event.
func ingestRecording(t *testing.T) (ingestRun, []readRecord) {
	addr := testenv.KafkaAddr(t)
	events := recordedFeed(t, 7000)
	// A canary (dropped by ingest) and a resent event (written once) at the end.
	canary := feedEvent{id: `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":99999}]`, metaID: "c0ffee00-canary", canary: true,
		data: []byte(`{"$schema":"/mediawiki/recentchange/1.0.0","meta":{"domain":"canary","id":"c0ffee00-canary","dt":"2026-12-01T00:00:00Z","stream":"mediawiki.recentchange"}}`)}
	resent := events[0]
	resent.id = `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":100000}]`
	events = append(events, canary, resent)
	run := ingestRun{addr: addr, topic: testenv.Topic(t, addr, 3), events: events, want: map[string]feedEvent{}}
	for _, e := range run.events {
		if _, seen := run.want[e.metaID]; !seen && !e.canary {
			run.want[e.metaID] = e
		}
	}
	feed := serveFeed(t, run.events)
	run.start = time.Now()
	r := startCommand(t, []string{"ingest"}, map[string]string{
		"WIKIFLOW_SOURCE_URL":        feed.URL + "/v2/stream/recentchange",
		"WIKIFLOW_KAFKA_BROKERS":     addr,
		"WIKIFLOW_KAFKA_TOPIC":       run.topic,
		"WIKIFLOW_DEAD_LETTER_TOPIC": testenv.Topic(t, addr, 1),
	}, true)
	// The canary and the resent event come last: once both are counted, every
	// frame has been handled; stopping drains what is still being written.
	r.waitMetric(t, "wikiflow_ingest_canaries_dropped_total", 1, 60*time.Second)
	r.waitMetric(t, "wikiflow_ingest_duplicates_skipped_total", 1, 10*time.Second)
	if err := r.stop(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, r.stderr.String())
	}
	run.end = time.Now()
	return run, consumeFranz(t, addr, run.topic, len(run.want))
}

// consumeFranz reads the whole topic from the start with franz-go, failing when
// it holds fewer than n distinct meta-id headers after 90 s.
func consumeFranz(t *testing.T, addr, topic string, n int) []readRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out []readRecord
	ids := map[string]bool{}
	// Read until n events are there, then on until a poll of 2 s brings nothing more.
	for quiet := false; !quiet && ctx.Err() == nil; {
		pctx, pcancel := ctx, context.CancelFunc(func() {})
		if len(ids) >= n {
			pctx, pcancel = context.WithTimeout(ctx, 2*time.Second)
		}
		fs := cl.PollFetches(pctx)
		expired := pctx.Err() != nil
		pcancel()
		quiet = len(ids) >= n && fs.NumRecords() == 0
		for _, fe := range fs.Errors() {
			if !expired {
				t.Fatalf("franz-go fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			rr := readRecord{partition: r.Partition, key: r.Key, value: r.Value, headers: map[string][]string{}, time: r.Timestamp}
			for _, h := range r.Headers {
				rr.headers[h.Key] = append(rr.headers[h.Key], string(h.Value))
			}
			out = append(out, rr)
			if id := rr.headers[wire.HeaderMetaID]; len(id) == 1 {
				ids[id[0]] = true
			}
		})
	}
	if len(ids) < n {
		t.Fatalf("franz-go read %d records with %d distinct meta ids in 90 s, want %d", len(out), len(ids), n)
	}
	return out
}

// header returns the only value of header k, failing when it is absent or repeated.
func (r readRecord) header(t *testing.T, k string) string {
	t.Helper()
	if len(r.headers[k]) != 1 {
		t.Errorf("record %s: header %s = %q, want exactly one", r.key, k, r.headers[k])
		return ""
	}
	return r.headers[k][0]
}

// check compares what another client read with what the feed sent.
func (run ingestRun) check(t *testing.T, client string, recs []readRecord) {
	t.Helper()
	order := map[string]int{}
	for i, e := range run.events {
		order[e.id] = i
	}
	got := map[string]int{}
	keyPartition := map[string]int32{}
	failures := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if failures++; failures <= 10 {
			t.Errorf(client+": "+format, args...)
		}
	}
	defer func() {
		if failures > 10 {
			t.Errorf("%s: %d more problems", client, failures-10)
		}
	}()
	for _, r := range recs {
		id := r.header(t, wire.HeaderMetaID)
		e, ok := run.want[id]
		if !ok {
			errorf("record with meta-id %q that the feed did not send (or a canary)", id)
			continue
		}
		got[id]++
		if !bytes.Equal(r.value, e.data) {
			errorf("value of %s differs from the feed's bytes:\n got %.200q\nwant %.200q", id, r.value, e.data)
		}
		if string(r.key) != e.wiki {
			errorf("key of %s = %q, want %q", id, r.key, e.wiki)
		}
		if sse := r.header(t, wire.HeaderSSEID); sse != e.id {
			errorf("sse-id of %s = %q, want %q", id, sse, e.id)
		}
		if h, err := event.ParseHead(e.data); err != nil || r.header(t, wire.HeaderSubject) != h.Subject(wire.SubjectPrefix) {
			errorf("subject of %s = %q, want %q (%v)", id, r.headers[wire.HeaderSubject], h.Subject(wire.SubjectPrefix), err)
		}
		ns, err := strconv.ParseInt(r.header(t, wire.HeaderReceived), 10, 64)
		if rt := time.Unix(0, ns); err != nil || rt.Before(run.start) || rt.After(run.end) {
			errorf("received-ns of %s = %v (%v), not within the run", id, rt, err)
		}
		if resume := r.header(t, ingest.HeaderResumeID); resume != "" && order[resume] >= order[e.id] {
			errorf("resume-id of %s is %q, not a position before the record's own", id, resume)
		}
		if r.time.Before(run.start.Add(-time.Second)) || r.time.After(run.end.Add(time.Second)) {
			errorf("timestamp of %s = %v, not within the run", id, r.time)
		}
		if p, seen := keyPartition[string(r.key)]; seen && p != r.partition {
			errorf("key %s in partitions %d and %d", r.key, p, r.partition)
		}
		keyPartition[string(r.key)] = r.partition
	}
	dups := 0
	for id := range run.want {
		if got[id] == 0 {
			errorf("event %s missing", id)
		}
		dups += max(got[id]-1, 0)
	}
	t.Logf("%s read %d records: %d distinct events of %d sent, %d duplicates, %d keys", client, len(recs), len(got), len(run.events), dups, len(keyPartition))
}

// TestIngestRecordsReadBackByOtherKafkaClients runs ingest on the recording and
// reads the topic back with franz-go and with kcat (librdkafka): keys, values
// byte for byte, and every header ingest writes.
func TestIngestRecordsReadBackByOtherKafkaClients(t *testing.T) {
	run, recs := ingestRecording(t)
	run.check(t, "franz-go", recs)
	run.check(t, "kcat", consumeKcat(t, run.addr, run.topic))
}

// consumeKcat reads the whole topic with kcat's JSON envelope (-J).
func consumeKcat(t *testing.T, addr, topic string) []readRecord {
	t.Helper()
	kcat := promtooltest.Tool(t, "kcat", "install it with `sudo apt-get install -y kcat`")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q", "-J")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	var recs []readRecord
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m struct {
			Partition int32    `json:"partition"`
			TS        int64    `json:"ts"`
			Headers   []string `json:"headers"`
			Key       string   `json:"key"`
			Payload   string   `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat line %.200q: %v", line, err)
		}
		r := readRecord{partition: m.Partition, key: []byte(m.Key), value: []byte(m.Payload), headers: map[string][]string{}, time: time.UnixMilli(m.TS)}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			r.headers[m.Headers[i]] = append(r.headers[m.Headers[i]], m.Headers[i+1])
		}
		recs = append(recs, r)
	}
	return recs
}
