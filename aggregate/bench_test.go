package aggregate

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// benchEvents is how many messages BenchmarkAggregate consumes per iteration.
const benchEvents = 50_000

// publishCopies publishes n messages made of the recorded events, copy k of an
// event with its meta.id and title suffixed by k (so that every message is a
// distinct event on a distinct page, as in a real backlog), and returns the
// expected per-domain counts and the last sequence.
func (e *env) publishCopies(tb testing.TB, n int) (map[string]int64, uint64) {
	tb.Helper()
	recs := recording.Events()
	want := map[string]int64{}
	var futures []jetstream.PubAckFuture
	for i := 0; i < n; i++ {
		r, k := recs[i%len(recs)], i/len(recs)
		ev, err := event.Parse(r.Data)
		if err != nil {
			tb.Fatalf("recorded line %d: %v", r.Line, err)
		}
		id := ev.ID + "-" + strconv.Itoa(k)
		data := bytes.Replace(r.Data, []byte(`"id":"`+ev.ID+`"`), []byte(`"id":"`+id+`"`), 1)
		if k > 0 {
			data = bytes.Replace(data, []byte(`"title":"`), []byte(`"title":"c`+strconv.Itoa(k)+` `), 1)
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, id)
		f, err := e.js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			tb.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
		want[ev.Domain]++
	}
	var last uint64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				tb.Fatalf("message %d is a duplicate", ack.Sequence)
			}
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			tb.Fatalf("publish: %v", err)
		case <-time.After(30 * time.Second):
			tb.Fatal("publish: no ack in 30s")
		}
	}
	if last != uint64(n) {
		tb.Fatalf("last sequence %d, want %d", last, n)
	}
	return want, last
}

// BenchmarkAggregate measures the stage from a JetStream backlog of benchEvents
// distinct events to the watermark reaching the last sequence, with the default
// batch settings: each iteration is a fresh consumer (its own watermark) counting
// the whole backlog into a fresh namespace.
func BenchmarkAggregate(b *testing.B) {
	e := newEnv(b)
	want, last := e.publishCopies(b, benchEvents)
	ctx := context.Background()
	i := 0
	var total time.Duration
	for b.Loop() {
		i++
		// A fresh base name per iteration, so that every run starts from an empty
		// projection, as a new deployment over a backlog does.
		e.base = testenv.Prefix(b, e.rdb)
		e.store = projection.NewStore(e.rdb, e.base)
		cfg := e.config("bench"+strconv.Itoa(i), wire.SubjectAll, DefaultBatchSize)
		cfg.MaxWait, cfg.AckWait = DefaultMaxWait, DefaultAckWait
		a, err := New(cfg, quiet)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		r := start(a)
		for {
			w, err := e.store.Watermark(ctx, projection.DefaultNamespace, cfg.Consumer)
			if err != nil {
				b.Fatal(err)
			}
			if w == last {
				break
			}
			if time.Since(t0) > 5*time.Minute {
				b.Fatalf("watermark %d after 5 minutes, want %d", w, last)
			}
			time.Sleep(2 * time.Millisecond)
		}
		total += time.Since(t0)
		b.StopTimer()
		r.stop(b)
		e.checkCounts(b, want, true)
		e.cleanBase(b)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchEvents*i)/total.Seconds(), "events/s")
}

// cleanBase deletes every key of the env's base name.
func (e *env) cleanBase(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	for _, pat := range []string{"{" + e.base + "}*", e.base} {
		iter := e.rdb.Scan(ctx, 0, pat, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Fatal(err)
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := e.rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
				tb.Fatal(err)
			}
			keys = keys[n:]
		}
	}
}
