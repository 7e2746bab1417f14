package aggregate

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/replay/rebuild"
)

// publishEvents publishes recs as the bridge would, under message ids tag-<i>
// (their own meta.id when tag is ""), and returns the last sequence and the
// per-domain counts of the events.
func (e *env) publishEvents(t testing.TB, recs []recording.Event, tag string) (uint64, map[string]int64) {
	t.Helper()
	counts := map[string]int64{}
	var last uint64
	for i, rec := range recs {
		ev, err := event.Parse(rec.Data)
		if err != nil {
			t.Fatalf("recorded line %d: %v", rec.Line, err)
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = rec.Data
		id := ev.ID
		if tag != "" {
			id = fmt.Sprintf("%s-%d", tag, i)
		}
		m.Header.Set(jetstream.MsgIDHeader, id)
		ack, err := e.js.PublishMsg(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate {
			t.Fatalf("message %s was a duplicate", id)
		}
		counts[ev.Domain]++
		last = ack.Sequence
	}
	return last, counts
}

// legacyCounts reads the legacy domain -> count hash and checks that the
// current namespace's own copy agrees with it.
func (e *env) legacyCounts(t testing.TB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	ns, err := e.store.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, key := range []string{e.base, projection.New(e.base, ns).All(projection.KindDomain)} {
		h, err := e.rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for d, v := range h {
			if got[d], err = strconv.ParseInt(v, 10, 64); err != nil {
				t.Fatalf("%s %s = %q", key, d, v)
			}
		}
		if key == e.base {
			out = got
		} else if !maps.Equal(got, out) {
			t.Errorf("namespace %s counts differ from the legacy hash", ns)
		}
	}
	return out
}

func equalCounts(t testing.TB, what string, got, want map[string]int64) {
	t.Helper()
	var gotN, wantN int64
	for _, n := range got {
		gotN += n
	}
	for _, n := range want {
		wantN += n
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: %d events in %d domains, want %d in %d", what, gotN, len(got), wantN, len(want))
		for d, n := range want {
			if got[d] != n {
				t.Errorf("  %s: %d, want %d", d, got[d], n)
			}
		}
	}
}

func add(to, from map[string]int64) {
	for d, n := range from {
		to[d] += n
	}
}

// tailLossEnv is a stream on a NATS server that can be restarted on the same port
// and store, and whose store can be put back to an earlier copy.
type tailLossEnv struct {
	*env
	port int
	dir  string
	srv  *natsserver.Server
}

func (e *tailLossEnv) stopServer() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func (e *tailLossEnv) startServer(t testing.TB) {
	_, e.srv = testenv.NATSAt(t, e.port, e.dir)
	e.js = newJS(t, e.url)
}

// TestStreamTailLoss loses the tail of the stream as an OS crash loses what
// nats-server had not synced to disk: the store is put back to a copy taken after
// the first 1,000 messages, although the aggregate had counted 2,723. New,
// different events then reuse sequences 1,001 onwards. The aggregate must refuse
// to count them as already applied, say so and what to do, and a rebuild must
// then give the exact counts of what the stream holds.
func TestStreamTailLoss(t *testing.T) {
	tests := []struct {
		name string
		// running keeps the aggregate running through the loss; otherwise it is
		// stopped and started again once the stream has grown past the watermark.
		running bool
	}{
		{"running through the loss, stream behind the watermark", true},
		{"stopped during the loss, stream regrown past the watermark", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { testStreamTailLoss(t, tc.running) })
	}
}

func testStreamTailLoss(t *testing.T, running bool) {
	rdb := testenv.Redis(t)
	base := testenv.Prefix(t, rdb)
	e := &tailLossEnv{port: testenv.FreePort(t), dir: t.TempDir()}
	e.env = &env{redis: testenv.RedisURL(t), rdb: rdb, base: base, store: projection.NewStore(rdb, base)}
	e.url = fmt.Sprintf("nats://127.0.0.1:%d", e.port)
	e.startServer(t)
	createStream(t, e.js)
	recs := recording.Events()
	cfg := e.config("aggregate", wire.SubjectAll, 400)

	// What the disk holds at the last sync: 1,000 messages, all counted and acked.
	synced, kept := e.publishEvents(t, recs[:1000], "")
	r := start(newAggregate(t, cfg))
	e.waitWatermark(t, "aggregate", synced)
	e.waitAcked(t, "aggregate", synced)
	r.stop(t)
	e.stopServer()
	snapshot := t.TempDir()
	if err := os.CopyFS(snapshot, os.DirFS(e.dir)); err != nil {
		t.Fatal(err)
	}
	e.startServer(t)

	// Acknowledged and counted, but never synced.
	wm, more := e.publishEvents(t, recs[1000:], "")
	counted := maps.Clone(kept)
	add(counted, more)
	var logs logBuffer
	newLogged := func() *Aggregate {
		a, err := New(cfg, logs.logger())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := newLogged()
	r = start(a)
	e.waitWatermark(t, "aggregate", wm)
	equalCounts(t, "before the loss", e.legacyCounts(t), counted)
	if !running {
		r.stop(t)
	}

	// The crash: the store goes back to the synced copy.
	e.stopServer()
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(e.dir, os.DirFS(snapshot)); err != nil {
		t.Fatal(err)
	}
	e.startServer(t)
	stream := maps.Clone(kept) // what the stream holds from now on
	last, reused := e.publishEvents(t, recs[1500:2000], "reused")
	add(stream, reused)
	if last != synced+500 {
		t.Fatalf("new messages end at %d, want %d (the lost sequences reused)", last, synced+500)
	}
	if !running {
		last, reused = e.publishEvents(t, recs[:2000], "regrown")
		add(stream, reused)
		if last <= wm {
			t.Fatalf("the stream ends at %d, not past the watermark %d", last, wm)
		}
		a = newLogged()
		r = start(a)
	}
	defer func() { r.stop(t) }()

	refusing := func(a *Aggregate) func() bool {
		return func() bool { return stat(t, a.Stats(), "StreamTailLost") == 1 }
	}
	for deadline := time.Now().Add(20 * time.Second); !refusing(a)(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the aggregate never reported the lost tail; it skipped %d reused sequences as already applied",
				a.Stats().Duplicates.Load())
		}
	}
	lines := logs.lines("level=ERROR", fmt.Sprintf("watermark=%d", wm), "wikiflow rebuild")
	if len(lines) == 0 {
		t.Errorf("no error log line gives the watermark %d and says to run wikiflow rebuild; logs:\n%s", wm, logs.String())
	} else {
		t.Logf("logged: %s", lines[0])
	}
	if err := readiness(t, a)(context.Background()); err == nil || !strings.Contains(err.Error(), "wikiflow rebuild") {
		t.Errorf("Ready while refusing = %v, want an error that says to run wikiflow rebuild", err)
	}
	if running {
		// The stream grows past the watermark meanwhile: still nothing is counted,
		// and a second instance started now refuses too.
		last, reused = e.publishEvents(t, recs[:2000], "regrown")
		add(stream, reused)
		b := newLogged()
		rb := start(b)
		waitUntil(t, 20*time.Second, "a second instance did not refuse", refusing(b))
		rb.stop(t)
	}
	time.Sleep(time.Second)
	equalCounts(t, "while refusing", e.legacyCounts(t), counted)
	if got, _ := e.store.Watermark(context.Background(), projection.DefaultNamespace, "aggregate"); got != wm {
		t.Errorf("watermark %d while refusing, want %d", got, wm)
	}

	// The repair the log names: rebuild from the stream, switching although the
	// rebuilt counts differ from the live ones.
	rc := rebuild.DefaultConfig()
	rc.Base, rc.Force, rc.DropAfter, rc.Timeout = base, true, 0, 2*time.Minute
	res, err := rebuild.New(rc, quiet, io.Discard).RunWith(context.Background(), testenv.Connect(t, e.url), rdb)
	if err != nil || !res.Switched {
		t.Fatalf("rebuild: %v (%+v)", err, res)
	}
	e.waitWatermark(t, "aggregate", last)
	equalCounts(t, "after the rebuild", e.legacyCounts(t), stream)
	if refusing(a)() {
		t.Error("the aggregate still reports the lost tail after the rebuild")
	}
}
