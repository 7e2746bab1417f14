package aggregate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// env is one test's brokers: an embedded JetStream with the events stream, and a
// Redis base name of its own.
type env struct {
	url   string
	redis string
	js    jetstream.JetStream
	rdb   *redis.Client
	base  string
	store *projection.Store
	pubs  []published
}

// published is one message in the stream.
type published struct {
	seq     uint64
	subject string
	ev      *event.Event // nil for messages that are not countable events
}

func newEnv(t testing.TB) *env {
	t.Helper()
	rdb := testenv.Redis(t)
	base := testenv.Prefix(t, rdb)
	url, _ := testenv.NATS(t)
	js := newJS(t, url)
	createStream(t, js)
	return &env{url: url, redis: testenv.RedisURL(t), js: js, rdb: rdb, base: base, store: projection.NewStore(rdb, base)}
}

// newJS connects to the NATS server at url (closed when the test ends).
func newJS(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// createStream creates the events stream as the bridge configures it.
func createStream(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name:       wire.DefaultStream,
		Subjects:   []string{wire.SubjectAll},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Duplicates: 2 * time.Minute,
		MaxAge:     7 * 24 * time.Hour,
		DenyDelete: true,
		DenyPurge:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// publishRecorded publishes every recorded event, plus one invalid message and one
// canary, as the bridge would.
func (e *env) publishRecorded(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pub := func(subject, id string, data []byte, ev *event.Event) {
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Header.Set(wire.HeaderNATSReceived, strconv.FormatInt(time.Now().UnixNano(), 10))
		ack, err := e.js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if ack.Duplicate {
			ev = nil
		}
		e.pubs = append(e.pubs, published{seq: ack.Sequence, subject: subject, ev: ev})
	}
	recs := recording.Events()
	for i, r := range recs {
		ev, err := event.Parse(r.Data)
		if err != nil {
			t.Fatalf("recorded line %d: %v", r.Line, err)
		}
		pub(ev.Subject(wire.SubjectPrefix), ev.ID, r.Data, &ev)
		switch i {
		case 100:
			pub(wire.SubjectPrefix+".enwiki.edit", "bad-1", []byte(`{"meta":{"id":"bad-1"},"oops`), nil)
		case 1200:
			pub(wire.SubjectPrefix+".canary.edit", "canary-1",
				[]byte(`{"meta":{"domain":"canary","id":"canary-1","dt":"2024-01-01T00:00:00Z"}}`), nil)
		}
	}
}

// publishAgain publishes the first n recorded events again under new message ids
// (tag-0, tag-1, ...), adds them to want and returns the last stream sequence.
func (e *env) publishAgain(t *testing.T, n int, tag string, want map[string]int64) uint64 {
	t.Helper()
	var last uint64
	for i, rec := range recording.Events()[:n] {
		ev, _ := event.Parse(rec.Data)
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = rec.Data
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-%d", tag, i))
		ack, err := e.js.PublishMsg(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		want[ev.Domain]++
		last = ack.Sequence
	}
	return last
}

// expect returns the per-domain counts and last sequence of the published events
// whose subject passes keep.
func (e *env) expect(keep func(subject string) bool) (map[string]int64, uint64) {
	counts := map[string]int64{}
	var last uint64
	for _, p := range e.pubs {
		if !keep(p.subject) {
			continue
		}
		last = p.seq
		if p.ev != nil {
			counts[p.ev.Domain]++
		}
	}
	return counts, last
}

func all(string) bool { return true }

func (e *env) config(consumer, filter string, batch int) Config {
	c := DefaultConfig()
	c.NATS.URL = e.url
	c.Redis.URL = e.redis
	c.Base = e.base
	c.Consumer = consumer
	c.FilterSubject = filter
	c.BatchSize = batch
	c.MaxWait = 100 * time.Millisecond
	c.AckWait = time.Second
	return c
}

// quiet discards logs unless WIKIFLOW_TEST_LOG is set.
var quiet = func() *slog.Logger {
	if os.Getenv("WIKIFLOW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

func newAggregate(t testing.TB, cfg Config) *Aggregate {
	t.Helper()
	a, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// running is an aggregate running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(a *Aggregate) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("Run did not return after cancel; goroutines:\n%s", b.String())
	}
}

// waitWatermark waits until consumer's watermark in the current namespace reaches
// seq.
func (e *env) waitWatermark(t *testing.T, consumer string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(40 * time.Second)
	for {
		ns, err := e.store.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w, err := e.store.Watermark(ctx, ns, consumer)
		if err != nil {
			t.Fatal(err)
		}
		if w >= seq {
			if w != seq {
				t.Fatalf("%s watermark %d, beyond the last sequence %d", consumer, w, seq)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s watermark %d, want %d", consumer, w, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAcked waits until the consumer has acked everything up to seq.
func (e *env) waitAcked(t *testing.T, consumer string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := e.js.Consumer(ctx, wire.DefaultStream, consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream == seq && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: ack floor %d, %d pending; want %d, 0", consumer, info.AckFloor.Stream, info.NumAckPending, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkCounts compares the legacy hash, the all-time domain hash and the per-domain
// sums of the all-time cube with want.
func (e *env) checkCounts(t testing.TB, want map[string]int64, legacy bool) {
	t.Helper()
	ctx := context.Background()
	k := projection.New(e.base, projection.DefaultNamespace)
	cube, err := e.rdb.HGetAll(ctx, k.All(projection.KindCube)).Result()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	acc := map[string]int64{}
	for f, v := range cube {
		d, _, _, _, ok := projection.ParseCubeField(f)
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			t.Fatalf("cube field %q = %q", f, v)
		}
		acc[d] += n
	}
	for d, n := range acc {
		sums[d] = strconv.FormatInt(n, 10)
	}
	hashes := map[string]map[string]string{"cube sums": sums}
	if hashes["domain"], err = e.rdb.HGetAll(ctx, k.All(projection.KindDomain)).Result(); err != nil {
		t.Fatal(err)
	}
	if legacy {
		if hashes["legacy"], err = e.rdb.HGetAll(ctx, k.Legacy()).Result(); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, n := range want {
		total += n
	}
	for name, got := range hashes {
		if len(got) != len(want) {
			t.Errorf("%s: %d domains, want %d", name, len(got), len(want))
		}
		for d, n := range want {
			if got[d] != strconv.FormatInt(n, 10) {
				t.Errorf("%s: %s = %q, want %d", name, d, got[d], n)
			}
		}
	}
	m, err := e.store.Meta(ctx, projection.DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if m.Events != total {
		t.Errorf("meta events %d, want %d", m.Events, total)
	}
}

func TestExactlyOnceAndRestart(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)

	a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))
	r := start(a)
	e.waitWatermark(t, "aggregate", last)
	r.stop(t)
	e.checkCounts(t, want, true)
	st := a.Stats()
	if st.Applied.Load() != int64(len(recording.Events())) || st.Invalid.Load() != 1 || st.Canaries.Load() != 1 {
		t.Errorf("stats: applied %d invalid %d canaries %d; want %d, 1, 1",
			st.Applied.Load(), st.Invalid.Load(), st.Canaries.Load(), len(recording.Events()))
	}
	if st.LastSeq.Load() != int64(last) || st.Batches.Load() < 6 || st.ApplyCount.Load() < st.Batches.Load() || st.ApplyNanos.Load() <= 0 {
		t.Errorf("stats: last %d batches %d applies %d", st.LastSeq.Load(), st.Batches.Load(), st.ApplyCount.Load())
	}
	if f := time.Duration(st.FreshnessNanos.Load()); f <= 0 || f > time.Hour {
		t.Errorf("freshness %v", f)
	}

	// A restart finds nothing to do and counts nothing twice.
	a2 := newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))
	r2 := start(a2)
	time.Sleep(time.Second)
	// New events after the restart are counted.
	last = e.publishAgain(t, 3, "again", want)
	e.waitWatermark(t, "aggregate", last)
	r2.stop(t)
	e.checkCounts(t, want, true)
	if n := a2.Stats().Applied.Load(); n != 3 {
		t.Errorf("restarted aggregate applied %d events, want 3", n)
	}
}

func TestCrashBeforeAck(t *testing.T) {
	tests := []struct {
		name string
		// prepare runs before the final aggregate: it applies something without
		// acking it.
		prepare func(t *testing.T, e *env)
	}{
		{"hook fails after the second apply", func(t *testing.T, e *env) {
			a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 300))
			applies := 0
			var crashedAt uint64
			a.afterApply = func(last uint64) error {
				applies++
				if applies == 2 {
					crashedAt = last
					return errors.New("simulated crash")
				}
				return nil
			}
			err := a.Run(context.Background())
			if !errors.Is(err, errHook) {
				t.Fatalf("Run = %v, want the hook's error", err)
			}
			if w, _ := e.store.Watermark(context.Background(), projection.DefaultNamespace, "aggregate"); w != crashedAt || w == 0 {
				t.Fatalf("watermark after the crash %d, want %d", w, crashedAt)
			}
			appliedNotAcked(t, e.js, wire.DefaultStream, "aggregate", crashedAt)
		}},
		{"applied through the store, never acked", func(t *testing.T, e *env) {
			d := projection.NewDelta()
			for _, p := range e.pubs[:450] {
				if p.ev != nil {
					d.Add(p.ev)
				}
			}
			res, err := e.store.Apply(context.Background(), projection.DefaultNamespace, "aggregate", 0, e.pubs[449].seq, d)
			if err != nil || res.Status != projection.Applied {
				t.Fatalf("apply: %+v %v", res, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.publishRecorded(t)
			want, last := e.expect(all)
			tc.prepare(t, e)

			// Different batch boundaries than before.
			a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 137))
			r := start(a)
			e.waitWatermark(t, "aggregate", last)
			e.waitAcked(t, "aggregate", last)
			r.stop(t)
			e.checkCounts(t, want, true)
		})
	}
}

func TestTwoInstancesOneConsumer(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)
	a1 := newAggregate(t, e.config("aggregate", wire.SubjectAll, 200))
	a2 := newAggregate(t, e.config("aggregate", wire.SubjectAll, 150))
	r1, r2 := start(a1), start(a2)
	e.waitWatermark(t, "aggregate", last)
	r1.stop(t)
	r2.stop(t)
	e.checkCounts(t, want, true)
	applied := a1.Stats().Applied.Load() + a2.Stats().Applied.Load()
	if applied != int64(len(recording.Events())) {
		t.Errorf("the two instances applied %d events in all, want %d", applied, len(recording.Events()))
	}
	t.Logf("applied %d + %d, out of order %d + %d, conflicts %d + %d",
		a1.Stats().Applied.Load(), a2.Stats().Applied.Load(),
		a1.Stats().OutOfOrder.Load(), a2.Stats().OutOfOrder.Load(),
		a1.Stats().CASConflicts.Load(), a2.Stats().CASConflicts.Load())
}

func TestRedisDataLoss(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)
	ctx := context.Background()

	a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))
	r := start(a)
	e.waitWatermark(t, "aggregate", last)
	r.stop(t)

	tests := []struct {
		name string
		lose func(t *testing.T)
	}{
		{"everything lost", func(t *testing.T) {
			keys, err := e.rdb.Keys(ctx, "{"+e.base+"}*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := e.rdb.Del(ctx, append(keys, e.base)...).Err(); err != nil {
				t.Fatal(err)
			}
		}},
		{"rolled back to an older snapshot", func(t *testing.T) {
			// Recount the first 1000 messages only, as an old snapshot would hold.
			keys, _ := e.rdb.Keys(ctx, "{"+e.base+"}*").Result()
			e.rdb.Del(ctx, append(keys, e.base)...)
			d := projection.NewDelta()
			for _, p := range e.pubs[:1000] {
				if p.ev != nil {
					d.Add(p.ev)
				}
			}
			res, err := e.store.Apply(ctx, projection.DefaultNamespace, "aggregate", 0, e.pubs[999].seq, d)
			if err != nil || res.Status != projection.Applied {
				t.Fatalf("apply: %+v %v", res, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.lose(t)
			a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))
			r := start(a)
			e.waitWatermark(t, "aggregate", last)
			r.stop(t)
			e.checkCounts(t, want, true)
			if n := a.Stats().Recoveries.Load(); n != 1 {
				t.Errorf("%d recoveries, want 1", n)
			}
		})
	}
}

func TestScaleOutDisjointFilters(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	filters := map[string]string{
		"agg-edit":       wire.SubjectPrefix + ".*.edit",
		"agg-categorize": wire.SubjectPrefix + ".*.categorize",
	}
	keep := func(subject string) bool {
		return strings.HasSuffix(subject, ".edit") || strings.HasSuffix(subject, ".categorize")
	}
	want, _ := e.expect(keep)
	var rs []*running
	for name, f := range filters {
		rs = append(rs, start(newAggregate(t, e.config(name, f, 100))))
	}
	for name, f := range filters {
		suffix := f[strings.LastIndex(f, "."):]
		_, last := e.expect(func(s string) bool { return strings.HasSuffix(s, suffix) })
		e.waitWatermark(t, name, last)
	}
	for _, r := range rs {
		r.stop(t)
	}
	e.checkCounts(t, want, true)
}

func TestNamespaceSwitch(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)
	ctx := context.Background()
	a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))
	r := start(a)
	e.waitWatermark(t, "aggregate", last)

	// A rebuild fills namespace r1 up to the same watermark and switches.
	d := projection.NewDelta()
	for _, p := range e.pubs {
		if p.ev != nil {
			d.Add(p.ev)
		}
	}
	if res, err := e.store.ApplyStandby(ctx, "r1", "aggregate", 0, last, d); err != nil || res.Status != projection.Applied {
		t.Fatalf("standby apply: %+v %v", res, err)
	}
	if err := e.store.Switch(ctx, projection.DefaultNamespace, "r1", []string{"aggregate"}); err != nil {
		t.Fatal(err)
	}
	// New events land in r1.
	rec := recording.Events()[0]
	ev, _ := event.Parse(rec.Data)
	m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
	m.Data = rec.Data
	m.Header.Set(jetstream.MsgIDHeader, "after-switch")
	ack, err := e.js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	e.waitWatermark(t, "aggregate", ack.Sequence)
	r.stop(t)
	want[ev.Domain]++
	got, err := e.rdb.HGetAll(ctx, e.base).Result()
	if err != nil {
		t.Fatal(err)
	}
	for dom, n := range want {
		if got[dom] != strconv.FormatInt(n, 10) {
			t.Errorf("legacy %s = %q, want %d", dom, got[dom], n)
		}
	}
	if n := a.Stats().NamespaceSwitches.Load(); n != 1 {
		t.Errorf("%d namespace switches seen, want 1", n)
	}
	if w, _ := e.store.Watermark(ctx, projection.DefaultNamespace, "aggregate"); w != last {
		t.Errorf("old namespace watermark %d, want %d (untouched)", w, last)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.Consumer = "a.b"
	bad.BatchSize = 0
	bad.AckWait = 10 * time.Millisecond
	bad.Base = ""
	bad.Stream = "a/b"
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, s := range []string{"stream:", "consumer", "batch-size", "ack-wait", "hash"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if _, err := New(bad, nil); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	envs := map[string]string{
		"WIKIFLOW_AGGREGATE_BATCH":    "42",
		"WIKIFLOW_AGGREGATE_CONSUMER": "agg-2",
		"WIKIFLOW_AGGREGATE_FILTER":   wire.SubjectPrefix + ".*.edit",
	}
	f := cli.New("aggregate", "test", "", func(k string) string { return envs[k] }, io.Discard)
	var c Config
	Flags(f, &c)
	if err := f.Parse([]string{"-max-wait", "1s"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.BatchSize = 42
	want.Consumer = "agg-2"
	want.FilterSubject = wire.SubjectPrefix + ".*.edit"
	want.MaxWait = time.Second
	if c.BatchSize != want.BatchSize || c.Consumer != want.Consumer || c.FilterSubject != want.FilterSubject ||
		c.MaxWait != want.MaxWait || c.AckWait != want.AckWait || c.Stream != want.Stream || c.Base != want.Base ||
		c.NATS.URL != want.NATS.URL || c.Redis.URL != want.Redis.URL {
		t.Errorf("config %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestNATSRestart(t *testing.T) {
	rdb := testenv.Redis(t)
	base := testenv.Prefix(t, rdb)
	port, dir := testenv.FreePort(t), t.TempDir()
	url, srv := testenv.NATSAt(t, port, dir)
	e := &env{url: url, redis: testenv.RedisURL(t), rdb: rdb, base: base, store: projection.NewStore(rdb, base)}
	connect := func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if e.js, err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
	}
	connect()
	if _, err := e.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	e.publishRecorded(t)
	a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))
	r := start(a)
	_, last := e.expect(all)
	e.waitWatermark(t, "aggregate", last)

	// Restart the server on the same port and store; the aggregate reconnects.
	srv.Shutdown()
	srv.WaitForShutdown()
	testenv.NATSAt(t, port, dir)
	connect()
	first := len(e.pubs)
	e.publishRecorded(t) // the same events again: removed by the duplicate window
	for _, p := range e.pubs[first:] {
		if p.ev != nil {
			t.Fatalf("republished event %s was not a duplicate", p.ev.ID)
		}
	}
	want, _ := e.expect(all)
	last = e.publishAgain(t, 5, "after-restart", want)
	e.waitWatermark(t, "aggregate", last)
	r.stop(t)
	e.checkCounts(t, want, true)
}

// TestRepositionsWhenTheNextMessageNeverComesBack holds the message right after
// the watermark with a hung instance that keeps it in progress forever, so the
// consumer never redelivers it: the aggregate must reposition the consumer right
// after its watermark and still count everything exactly once.
func TestRepositionsWhenTheNextMessageNeverComesBack(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)
	cfg := e.config("aggregate", wire.SubjectAll, 300)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The hung instance: same durable consumer, takes the first message and keeps
	// extending its ack deadline without ever acking it.
	st, err := e.js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	a := newAggregate(t, cfg)
	w := &worker{Aggregate: a}
	cons, err := st.CreateOrUpdateConsumer(ctx, w.consumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	held := <-batch.Messages()
	if held == nil {
		t.Fatal("the hung instance got no message")
	}
	go func() {
		tick := time.NewTicker(cfg.AckWait / 4)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = held.InProgress()
			}
		}
	}()

	r := start(a)
	e.waitWatermark(t, "aggregate", last)
	r.stop(t)
	e.checkCounts(t, want, true)
	if a.Stats().Recoveries.Load() == 0 {
		t.Error("the consumer was never repositioned")
	}
}
