package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wikiflow/wikiflow/ingest"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// TestEventStreamIngest points a second wikiflow ingest at the endpoint, the
// fan-out the JetStream hop exists for. One ingest reads everything from
// since=0, is stopped half way and restarted, so that it resumes with the
// Last-Event-ID it recorded in Kafka (ingest resumes from the batch before its
// last and skips what it already wrote by meta.id); another reads a filtered
// stream. Read back from Kafka with franz-go, the topics must hold exactly the
// stream's meta.ids (the filtered one exactly those encoding/json finds
// matching), each once.
func TestEventStreamIngest(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	env := newEventEnv(t, nil)
	all := evRecorded()
	half := env.publish(t, all[:1500]...)
	stream := env.base + eventStreamRoute
	whole := testenv.Topic(t, addr, 1)
	filtered := testenv.Topic(t, addr, 1)
	const query = "?type=edit,new&bot=false"

	stopFiltered := runIngest(t, addr, stream+query, filtered)
	stop := runIngest(t, addr, stream, whole)
	waitRecords(t, addr, whole, len(half), time.Minute)
	stop()

	env.publish(t, append(all[1500:], []byte(prettyEvent))...)
	stop = runIngest(t, addr, stream, whole)
	defer stop()
	defer stopFiltered()

	want := evMetaIDs(env.events)
	wantF := evMetaIDs(evMatching(t, env.events, func(f evFields) bool {
		return (f.Type == "edit" || f.Type == "new") && !f.Bot
	}))
	waitRecords(t, addr, whole, len(want), time.Minute)
	waitRecords(t, addr, filtered, len(wantF), time.Minute)
	// Read everything, waiting a little for anything extra.
	checkIDs(t, "resumed ingest", waitRecords(t, addr, whole, len(want)+1, 2*time.Second), want)
	checkIDs(t, "filtered ingest", waitRecords(t, addr, filtered, len(wantF)+1, 2*time.Second), wantF)
}

// runIngest runs an ingest from since=0 on url into topic; the returned stop
// waits until it has returned.
func runIngest(t *testing.T, addr, url, topic string) (stop func()) {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.URL = url
	cfg.Since = "0"
	cfg.Kafka.Brokers = []string{addr}
	cfg.Kafka.Topic = topic
	cfg.DeadLetterTopic = topic + "-dlq"
	cfg.BackoffMin = 100 * time.Millisecond
	cfg.BackoffMax = time.Second
	in, err := ingest.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stopRun := testenv.Run(t, 40*time.Second, in.Run)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := stopRun(); err != nil {
				t.Errorf("ingest: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitRecords reads topic from the start with franz-go until it holds at least
// n records or d passes, and returns the meta.id of each record's value.
func waitRecords(t *testing.T, addr, topic string, n int, d time.Duration) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ids []string
	deadline := time.Now().Add(d)
	for len(ids) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				Meta struct {
					ID string `json:"id"`
				} `json:"meta"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Errorf("record %d is not JSON: %v", r.Offset, err)
			}
			if strings.ContainsAny(string(r.Value), "\r\n") {
				t.Errorf("record %d holds a line break", r.Offset)
			}
			if h := header(r, wire.HeaderSSEID); !strings.HasPrefix(h, `[{"topic":"WIKIMEDIA","partition":0,"offset":`) {
				t.Errorf("record %d: SSE id header %q", r.Offset, h)
			}
			ids = append(ids, v.Meta.ID)
		})
	}
	return ids
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// evMetaIDs returns the meta.id of each event, decoded with encoding/json.
func evMetaIDs(evs []evLogged) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = evMetaID(e.raw)
	}
	return out
}

// checkIDs compares two multisets of ids.
func checkIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	var repeated, missing []string
	for id, n := range count {
		if n > 1 {
			repeated = append(repeated, id)
		}
	}
	for _, id := range want {
		if count[id] == 0 {
			missing = append(missing, id)
		}
		delete(count, id)
	}
	sort.Strings(repeated)
	if len(got) != len(want) || len(repeated) > 0 || len(missing) > 0 || len(count) > 0 {
		t.Errorf("%s: %d records for %d events: %d repeated (%.3q), %d missing (%.3q), %d unexpected",
			what, len(got), len(want), len(repeated), repeated, len(missing), missing, len(count))
	}
}
