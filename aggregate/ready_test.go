package aggregate

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// logBuffer collects a test's log lines (info and above); safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// lines returns the logged lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// stat reads the counter name of a Stats struct by reflection, so that a test
// of a counter compiles before the counter exists (and fails).
func stat(t testing.TB, st *Stats, name string) int64 {
	t.Helper()
	f := reflect.ValueOf(st).Elem().FieldByName(name)
	if !f.IsValid() {
		t.Fatalf("the aggregate's Stats have no %s counter", name)
	}
	c, ok := f.Addr().Interface().(*atomic.Int64)
	if !ok {
		t.Fatalf("Stats.%s is not an atomic.Int64", name)
	}
	return c.Load()
}

// readiness returns a's readiness check (the obs.Readier the health server asks).
func readiness(t testing.TB, a *Aggregate) func(context.Context) error {
	t.Helper()
	r, ok := any(a).(interface{ Ready(context.Context) error })
	if !ok {
		t.Fatal("the aggregate has no Ready(ctx) error method: /readyz cannot tell a missing dependency")
	}
	return r.Ready
}

// waitUntil polls cond every 50ms for up to d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func consumers(t testing.TB, js jetstream.JetStream) []string {
	t.Helper()
	st, err := js.Stream(context.Background(), wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := st.ConsumerNames(context.Background())
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// unreachableRedis returns a Redis URL on a port where nothing listens.
func unreachableRedis(t testing.TB) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", testenv.FreePort(t))
}

func TestChecksRedisBeforeCreatingTheConsumer(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("aggregate", wire.SubjectAll, 100)
	cfg.Redis.URL = unreachableRedis(t)
	var logs logBuffer
	a, err := New(cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	r := start(a)
	waitUntil(t, 10*time.Second, "no failed attempt counted", func() bool { return a.Stats().Errors.Load() >= 2 })
	r.stop(t)
	if names := consumers(t, e.js); len(names) != 0 {
		t.Errorf("the aggregate created consumer %v although Redis was unreachable", names)
	}
	port := strings.TrimSuffix(cfg.Redis.URL[strings.LastIndex(cfg.Redis.URL, ":")+1:], "/0")
	if got := logs.lines("level=WARN", "redis 127.0.0.1:"+port); len(got) == 0 {
		t.Errorf("no warning names Redis and its address; logs:\n%s", logs.String())
	}
}

func TestReadyNamesTheMissingDependency(t *testing.T) {
	t.Run("redis unreachable", func(t *testing.T) {
		e := newEnv(t)
		cfg := e.config("aggregate", wire.SubjectAll, 100)
		cfg.Redis.URL = unreachableRedis(t)
		a := newAggregate(t, cfg)
		ready := readiness(t, a)
		if err := ready(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "nats: ") {
			t.Errorf("before Run: Ready = %v, want a nats: error (not connected yet)", err)
		}
		r := start(a)
		defer r.stop(t)
		var err error
		waitUntil(t, 10*time.Second, "Ready never named Redis", func() bool {
			err = ready(context.Background())
			return err != nil && strings.HasPrefix(err.Error(), "redis: ")
		})
		t.Logf("Ready: %v", err)
	})
	t.Run("nats stopped and started", func(t *testing.T) {
		rdb := testenv.Redis(t)
		base := testenv.Prefix(t, rdb)
		port, dir := testenv.FreePort(t), t.TempDir()
		url, srv := testenv.NATSAt(t, port, dir)
		e := &env{url: url, redis: testenv.RedisURL(t), rdb: rdb, base: base}
		e.js = newJS(t, url)
		createStream(t, e.js)
		a := newAggregate(t, e.config("aggregate", wire.SubjectAll, 100))
		ready := readiness(t, a)
		r := start(a)
		defer r.stop(t)
		waitUntil(t, 10*time.Second, "never ready with NATS and Redis up", func() bool { return ready(context.Background()) == nil })
		srv.Shutdown()
		srv.WaitForShutdown()
		var err error
		waitUntil(t, 10*time.Second, "still ready with NATS down", func() bool {
			err = ready(context.Background())
			return err != nil
		})
		if !strings.HasPrefix(err.Error(), "nats: ") {
			t.Errorf("Ready with NATS down = %v, want a nats: error", err)
		}
		testenv.NATSAt(t, port, dir)
		waitUntil(t, 15*time.Second, "not ready again after NATS came back", func() bool { return ready(context.Background()) == nil })
	})
}

// TestLogsTheWaitForRedelivery: an instance killed mid-batch leaves the message
// after the watermark delivered and unacknowledged; the next instance must say,
// once, that it waits for its redelivery and for how long, and count the wait.
func TestLogsTheWaitForRedelivery(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)
	cfg := e.config("aggregate", wire.SubjectAll, 300)
	cfg.AckWait = 3 * time.Second
	ctx := context.Background()

	// The killed instance: it fetched the first message and never acked it.
	st, err := e.js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, (&worker{Aggregate: newAggregate(t, cfg)}).consumerConfig())
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m := <-batch.Messages(); m == nil {
		t.Fatal("the killed instance got no message")
	}

	var logs logBuffer
	a, err := New(cfg, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	r := start(a)
	e.waitWatermark(t, "aggregate", last)
	r.stop(t)
	e.checkCounts(t, want, true)

	waits := logs.lines("waiting_for_seq=1 ", "ack_wait=3s")
	if len(waits) != 1 {
		t.Errorf("%d log lines say the aggregate waits for sequence 1 and for how long, want 1; logs:\n%s", len(waits), logs.String())
	} else if !strings.Contains(waits[0], "redeliver") {
		t.Errorf("the wait is not explained as a redelivery: %s", waits[0])
	}
	if n := stat(t, a.Stats(), "RedeliveryWaits"); n != 1 {
		t.Errorf("RedeliveryWaits = %d, want 1; logs:\n%s", n, logs.String())
	}
	if n := stat(t, a.Stats(), "WaitingForSeq"); n != 0 {
		t.Errorf("WaitingForSeq = %d after counting resumed, want 0", n)
	}
}
