package rebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/api"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/lab/gen"
)

type fixture struct {
	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	rc      *redis.Client
	base    string
	log     *slog.Logger
}

func newFixture(t testing.TB, maxMsgs int64) *fixture {
	t.Helper()
	url, _ := testenv.NATS(t)
	f := &fixture{natsURL: url, nc: testenv.Connect(t, url), rc: testenv.Redis(t), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.base = testenv.Prefix(t, f.rc)
	js, err := jetstream.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	f.js = js
	cfg := jetstream.StreamConfig{Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll}, Storage: jetstream.FileStorage, DenyDelete: true, DenyPurge: true}
	if maxMsgs > 0 {
		cfg.MaxMsgs = maxMsgs
	}
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// publish stores recorded events in order (published asynchronously, every
// acknowledgment checked) and returns their per-domain counts.
func (f *fixture) publish(t testing.TB, evs []recording.Event) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, rec := range evs {
		ev, err := event.Parse(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = rec.Data
		m.Header.Set(nats.MsgIdHdr, ev.ID)
		// A loaded machine can hold acks back for seconds: wait rather than fail.
		fu, err := f.js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, fu)
		counts[ev.Domain]++
	}
	for _, fu := range futures {
		select {
		case ack := <-fu.Ok():
			if ack.Duplicate {
				t.Fatalf("message %d is a duplicate", ack.Sequence)
			}
		case err := <-fu.Err():
			t.Fatalf("publish: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("publish: no ack in 30s")
		}
	}
	return counts
}

// aggregate runs the live aggregate until ctx ends.
func (f *fixture) aggregate(t testing.TB, ctx context.Context) <-chan error {
	t.Helper()
	cfg := aggregate.DefaultConfig()
	cfg.NATS.URL = f.natsURL
	cfg.Redis.URL = testenv.RedisURL(t)
	cfg.Base = f.base
	a, err := aggregate.New(cfg, f.log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return done
}

// countLive publishes evs, runs the live aggregate until it has applied them all,
// stops it, and returns the events' per-domain counts.
func (f *fixture) countLive(t testing.TB, evs []recording.Event) map[string]int64 {
	t.Helper()
	want := f.publish(t, evs)
	ctx, cancel := context.WithCancel(context.Background())
	done := f.aggregate(t, ctx)
	f.waitLive(t, uint64(len(evs)))
	cancel()
	<-done
	return want
}

// liveFixture is a fixture whose live aggregate has counted the bundled
// recording; it returns the events and their per-domain counts.
func liveFixture(t testing.TB) (*fixture, []recording.Event, map[string]int64) {
	t.Helper()
	f := newFixture(t, 0)
	evs := recording.Events()
	return f, evs, f.countLive(t, evs)
}

// liveKeys returns a Store of the fixture's base and the keys of its live
// namespace.
func (f *fixture) liveKeys() (*projection.Store, projection.Keys) {
	store := projection.NewStore(f.rc, f.base)
	return store, store.Keys(projection.DefaultNamespace)
}

func (f *fixture) waitLive(t testing.TB, seq uint64) {
	t.Helper()
	store := projection.NewStore(f.rc, f.base)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := store.Current(context.Background())
		if err == nil {
			if wm, err := store.Watermark(context.Background(), cur, aggregate.DefaultConfig().Consumer); err == nil && wm >= seq {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the live aggregate did not reach seq %d", seq)
}

func (f *fixture) rebuild(t *testing.T, mod func(*Config)) (Result, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Base = f.base
	cfg.BatchSize = 400
	cfg.DropAfter = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return New(cfg, f.log, nil).RunWith(ctx, f.nc, f.rc)
}

func (f *fixture) legacy(t *testing.T) map[string]int64 {
	t.Helper()
	m, err := f.rc.HGetAll(context.Background(), f.base).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for k, v := range m {
		var n int64
		fmt.Sscan(v, &n)
		out[k] = n
	}
	return out
}

func equalCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %d, want %d", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("%s: unexpected %s = %d", what, k, v)
		}
	}
}

func TestRebuildEqualsLiveAndSwitches(t *testing.T) {
	f, evs, want := liveFixture(t)

	res, err := f.rebuild(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || !res.Dropped || len(res.Differences) != 0 || res.Partial || res.Events != int64(len(evs)) || res.From != projection.DefaultNamespace {
		t.Fatalf("result %+v", res)
	}
	store := projection.NewStore(f.rc, f.base)
	cur, _ := store.Current(context.Background())
	if cur != res.To {
		t.Fatalf("pointer names %s, want %s", cur, res.To)
	}
	equalCounts(t, "legacy hash after switch", f.legacy(t), want)
	// The replay's own consumer is gone; the live one stays.
	if names := testenv.ConsumerNames(t, f.js, wire.DefaultStream); len(names) != 1 || names[0] != aggregate.DefaultConfig().Consumer {
		t.Errorf("consumers after the rebuild: %v; want only the live aggregate's", names)
	}
	// The old namespace is gone.
	keys, _ := f.rc.Keys(context.Background(), "{"+f.base+"}:ns:"+projection.DefaultNamespace+":*").Result()
	if len(keys) != 0 {
		t.Fatalf("old namespace keeps %d keys", len(keys))
	}
	// The live aggregate carries on in the new namespace without counting twice.
	more := f.publish(t, recordingCopies(t, evs[:100], "more"))
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done2 := f.aggregate(t, ctx2)
	f.waitLive(t, uint64(len(evs)+100))
	cancel2()
	<-done2
	for d, n := range more {
		want[d] += n
	}
	equalCounts(t, "legacy hash after more events", f.legacy(t), want)
}

// recordingCopies returns copies of evs with fresh meta.ids.
func recordingCopies(t *testing.T, evs []recording.Event, tag string) []recording.Event {
	t.Helper()
	out := make([]recording.Event, len(evs))
	for i, rec := range evs {
		ev, err := event.Parse(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = recording.Event{Line: rec.Line, Data: []byte(strings.Replace(string(rec.Data), ev.ID, fmt.Sprintf("%s-%s-%d", ev.ID[:8], tag, i), 1))}
	}
	return out
}

func TestRebuildWhileLiveIngestionContinues(t *testing.T) {
	f := newFixture(t, 0)
	evs := recording.Events()
	want := f.publish(t, evs[:1500])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.aggregate(t, ctx)
	f.waitLive(t, 1500)

	// Publish the rest while the rebuild runs.
	var wg sync.WaitGroup
	var rest map[string]int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1500; i < len(evs); i += 100 {
			part := f.publish(t, evs[i:min(i+100, len(evs))])
			if rest == nil {
				rest = map[string]int64{}
			}
			for d, n := range part {
				rest[d] += n
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	res, err := f.rebuild(t, nil)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || len(res.Differences) != 0 {
		t.Fatalf("result %+v", res)
	}
	for d, n := range rest {
		want[d] += n
	}
	f.waitLive(t, uint64(len(evs)))
	cancel()
	<-done
	equalCounts(t, "legacy hash", f.legacy(t), want)
}

func TestSwitchUnderConcurrentReadersNeverMixes(t *testing.T) {
	f, evs, _ := liveFixture(t)
	// Make the live figures differ from what a rebuild produces: 1000 phantom edits.
	_, k := f.liveKeys()
	bg := context.Background()
	f.rc.HIncrBy(bg, k.All(projection.KindCube), projection.CubeField("phantom.example.org", "phantomwiki", "edit", false), 1000)
	f.rc.HIncrBy(bg, k.All(projection.KindDomain), "phantom.example.org", 1000)
	f.rc.HIncrBy(bg, k.Legacy(), "phantom.example.org", 1000)

	acfg := api.DefaultConfig()
	acfg.Redis.URL = testenv.RedisURL(t)
	acfg.Base = f.base
	acfg.CacheTTL = 0
	srv, err := api.New(acfg, f.log)
	if err != nil {
		t.Fatal(err)
	}
	oldTotal, newTotal := int64(len(evs)+1000), int64(len(evs))
	var stop atomic.Bool
	var seen sync.Map
	var wg sync.WaitGroup
	var reads atomic.Int64
	for _, path := range []string{"/stats", "/stats?by=domain&window=all", "/stats?by=type"} {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					resp, err := srv.App().Test(httptest.NewRequest(http.MethodGet, path, nil), 5000)
					if err != nil {
						t.Error(err)
						return
					}
					var body struct {
						Stats map[string]int64 `json:"stats"`
						Total int64            `json:"total"`
					}
					err = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					if err != nil {
						t.Error(err)
						return
					}
					var sum int64
					for _, n := range body.Stats {
						sum += n
					}
					if (body.Total != oldTotal && body.Total != newTotal) || sum != body.Total {
						t.Errorf("%s: total %d, sum %d: neither the old (%d) nor the new (%d) figures", path, body.Total, sum, oldTotal, newTotal)
						return
					}
					seen.Store(fmt.Sprint(path, body.Total), true)
					reads.Add(1)
				}
			}()
		}
	}
	time.Sleep(200 * time.Millisecond)
	res, err := f.rebuild(t, nil)
	if err == nil || !strings.Contains(err.Error(), "phantom.example.org") || res.Switched {
		t.Fatalf("a rebuild that differs from live must refuse to switch: %v %+v", err, res)
	}
	res, err = f.rebuild(t, func(c *Config) { c.Force = true })
	if err != nil || !res.Switched {
		t.Fatalf("forced rebuild: %v %+v", err, res)
	}
	stop.Store(true)
	wg.Wait()
	for _, p := range []string{"/stats", "/stats?by=domain&window=all"} {
		for _, total := range []int64{oldTotal, newTotal} {
			if _, ok := seen.Load(fmt.Sprint(p, total)); !ok {
				t.Errorf("%s never answered with total %d: the readers did not span the switch", p, total)
			}
		}
	}
	t.Logf("%d reads across the switch", reads.Load())
}

func TestPartialRebuildAfterRetention(t *testing.T) {
	f := newFixture(t, 2000)
	evs := recording.Events()
	f.publish(t, evs[:1000])
	ctx, cancel := context.WithCancel(context.Background())
	done := f.aggregate(t, ctx)
	f.waitLive(t, 1000)
	f.publish(t, evs[1000:])
	f.waitLive(t, uint64(len(evs)))
	cancel()
	<-done
	res, err := f.rebuild(t, nil)
	if err == nil || !res.Partial || res.PartialFrom.IsZero() || res.Switched {
		t.Fatalf("partial rebuild: err %v, %+v", err, res)
	}
	meta, _ := projection.NewStore(f.rc, f.base).Meta(context.Background(), res.To)
	if meta.Fields[projection.MetaPartialFrom] == "" {
		t.Fatal("the rebuilt namespace is not marked partial")
	}
	if res.Events != 2000 {
		t.Fatalf("counted %d events, want the 2000 retained", res.Events)
	}
}

func TestRebuildNeedsALiveProjection(t *testing.T) {
	f := newFixture(t, 0)
	f.publish(t, recording.Events()[:10])
	if _, err := f.rebuild(t, nil); err == nil || !strings.Contains(err.Error(), "no watermark") {
		t.Fatalf("err = %v", err)
	}
}

func TestRebuildEqualsLiveOnGeneratedLoad(t *testing.T) {
	f := newFixture(t, 0)
	g := gen.New(gen.DefaultProfile(), 7)
	var evs []recording.Event
	for i := range 20000 {
		evs = append(evs, recording.Event{Line: i + 1, Data: append([]byte(nil), g.Next()...)})
	}
	want := f.countLive(t, evs)
	res, err := f.rebuild(t, func(c *Config) { c.BatchSize = 5000 })
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || len(res.Differences) != 0 || res.Events != int64(len(evs)) {
		t.Fatalf("result %+v", res)
	}
	equalCounts(t, "legacy hash after the rebuild", f.legacy(t), want)
}

func TestFailedRebuildLeavesNothingBehind(t *testing.T) {
	f, evs, _ := liveFixture(t)
	// A live watermark past the end of the log: the replay reads everything, then
	// finds nothing more to read.
	store := projection.NewStore(f.rc, f.base)
	consumer := aggregate.DefaultConfig().Consumer
	if err := f.rc.HSet(context.Background(), store.Keys(projection.DefaultNamespace).Watermarks(), consumer, len(evs)+5).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := f.rebuild(t, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing after") || res.Switched {
		t.Fatalf("rebuild past the end of the log: %v %+v", err, res)
	}
	if res.To == "" {
		t.Fatal("the rebuild failed before it claimed a namespace: the test shows nothing")
	}
	keys, err := f.rc.Keys(context.Background(), store.Keys(res.To).Prefix()+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Errorf("the failed rebuild left %d keys of %s, such as %s", len(keys), res.To, keys[0])
	}
}

// cancelOnWrite cancels a rebuild at its first progress line, drawn once a
// batch is written, and records what the namespace being built held then.
type cancelOnWrite struct {
	t       *testing.T
	f       *fixture
	cancel  context.CancelFunc
	written int // counter keys of the namespace being built
	marks   int // watermarks recorded in it
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	if c.cancel == nil {
		return len(p), nil
	}
	c.cancel()
	c.cancel = nil
	ctx := context.Background()
	keys, err := c.f.rc.Keys(ctx, "{"+c.f.base+"}:ns:r*").Result()
	if err != nil {
		c.t.Error(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ":wm") {
			n, _ := c.f.rc.HLen(ctx, k).Result()
			c.marks += int(n)
		} else if !strings.HasSuffix(k, ":meta") {
			c.written++
		}
	}
	return len(p), nil
}

// TestInterruptedRebuildLeavesThePointer stops a rebuild once it has written
// counters into its namespace, before any checkpoint: the written batches moved
// no watermark, the pointer still names the live namespace, whose counts and
// legacy hash are untouched, and the unfinished namespace is removed.
func TestInterruptedRebuildLeavesThePointer(t *testing.T) {
	f := newFixture(t, 0)
	evs := recording.Events()
	want := f.countLive(t, evs)
	cfg := DefaultConfig()
	cfg.Base, cfg.BatchSize = f.base, 100
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	w := &cancelOnWrite{t: t, f: f, cancel: stop}
	res, err := New(cfg, f.log, w).RunWith(rctx, f.nc, f.rc)
	if err == nil || res.Switched {
		t.Fatalf("interrupted rebuild: %v %+v", err, res)
	}
	if w.written == 0 || w.marks != 0 {
		t.Fatalf("when interrupted the namespace held %d counter keys and %d watermarks; want some and none", w.written, w.marks)
	}
	store := projection.NewStore(f.rc, f.base)
	if cur, err := store.Current(ctx); err != nil || cur != projection.DefaultNamespace {
		t.Fatalf("pointer = %q %v, want %q", cur, err, projection.DefaultNamespace)
	}
	equalCounts(t, "legacy hash after the interrupted rebuild", f.legacy(t), want)
	keys, err := f.rc.Keys(ctx, store.Keys(res.To).Prefix()+"*").Result()
	if err != nil || len(keys) > 0 {
		t.Errorf("the interrupted rebuild left %d keys of %s (%v)", len(keys), res.To, err)
	}
}
