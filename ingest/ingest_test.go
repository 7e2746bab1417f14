package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/sse"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// frameID is the SSE id the test feed gives its i-th frame, shaped like Wikimedia's.
func frameID(i int) string {
	return fmt.Sprintf(`[{"topic":"test.recentchange","partition":0,"offset":%d}]`, i)
}

// frameIndex parses a frameID.
func frameIndex(t *testing.T, id string) int {
	t.Helper()
	var v []struct{ Offset int }
	if err := json.Unmarshal([]byte(id), &v); err != nil || len(v) != 1 {
		t.Fatalf("bad SSE id %q: %v", id, err)
	}
	return v[0].Offset
}

// plan scripts one connection of the test feed.
type plan struct {
	status     int    // when set, answer with this status only
	retryAfter string // Retry-After header of that answer
	count      int    // frames to send from the resume point; 0 means all
	end        string // after the frames: "" hang until the client leaves, "close", "error", "cut"
}

// request is what the test feed saw of one connection.
type request struct {
	lastEventID, since, agent string
	at                        time.Time
}

// testFeed is an EventStreams look-alike: it serves frames with ids frameID(i) and
// resumes at the Last-Event-ID it is sent, repeating that frame as Wikimedia can.
type testFeed struct {
	frames [][]byte
	crlf   bool
	plans  []plan
	mu     sync.Mutex
	reqs   []request
	srv    *httptest.Server
}

func newTestFeed(t *testing.T, frames [][]byte, crlf bool, plans ...plan) *testFeed {
	f := &testFeed{frames: frames, crlf: crlf, plans: plans}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *testFeed) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func (f *testFeed) write(w http.ResponseWriter, b []byte) {
	if f.crlf {
		b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	}
	w.Write(b)
}

func (f *testFeed) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, request{
		lastEventID: r.Header.Get("Last-Event-ID"),
		since:       r.URL.Query().Get("since"),
		agent:       r.Header.Get("User-Agent"),
		at:          time.Now(),
	})
	f.mu.Unlock()
	var p plan
	if n < len(f.plans) {
		p = f.plans[n]
	}
	if p.status != 0 {
		if p.retryAfter != "" {
			w.Header().Set("Retry-After", p.retryAfter)
		}
		http.Error(w, "scripted failure", p.status)
		return
	}
	start := 0
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		var v []struct{ Offset int }
		if err := json.Unmarshal([]byte(id), &v); err != nil || len(v) != 1 {
			http.Error(w, "bad Last-Event-ID", http.StatusBadRequest)
			return
		}
		start = v[0].Offset
	}
	end := len(f.frames)
	if p.count > 0 {
		end = min(start+p.count, end)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f.write(w, []byte(":ok\n\n"))
	var buf bytes.Buffer
	for i := start; i < end; i++ {
		buf.Reset()
		sse.AppendEvent(&buf, sse.Event{Type: "message", ID: frameID(i), Data: f.frames[i], Retry: -1})
		f.write(w, buf.Bytes())
		if i%50 == 0 {
			w.(http.Flusher).Flush()
		}
	}
	w.(http.Flusher).Flush()
	switch p.end {
	case "close":
		return
	case "cut":
		if end < len(f.frames) {
			buf.Reset()
			sse.AppendEvent(&buf, sse.Event{Type: "message", ID: frameID(end), Data: f.frames[end], Retry: -1})
			f.write(w, buf.Bytes()[:buf.Len()/2])
			w.(http.Flusher).Flush()
		}
		return
	case "error":
		f.write(w, []byte("event: error\ndata: {\"message\":\"scripted upstream error\"}\n\n"))
		w.(http.Flusher).Flush()
	}
	<-r.Context().Done()
}

// recorded returns the first n recorded events.
func recorded(t *testing.T, n int) [][]byte {
	t.Helper()
	evs := recording.Events()
	if len(evs) < n {
		t.Fatalf("recording holds %d events, want %d", len(evs), n)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = evs[i].Data
	}
	return out
}

// testConfig returns a config for the feed at url and fresh topic names, which
// ingest creates itself; they are deleted when the test ends.
func testConfig(t *testing.T, url string) Config {
	t.Helper()
	addr := testenv.KafkaAddr(t)
	c := DefaultConfig()
	c.URL = url
	c.Kafka.Brokers = []string{addr}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	c.Kafka.Topic = fmt.Sprintf("test-ingest-%s-%d", name, time.Now().UnixNano())
	c.DeadLetterTopic = c.Kafka.Topic + "-dlq"
	c.BackoffMin = 20 * time.Millisecond
	c.BackoffMax = 200 * time.Millisecond
	c.IdleTimeout = 10 * time.Second
	topics := []string{c.Kafka.Topic, c.DeadLetterTopic}
	t.Cleanup(func() {
		cl := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	})
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startIngest runs an Ingester; the returned stop cancels it and returns Run's result.
func startIngest(t *testing.T, cfg Config) (*Ingester, func() error) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	in, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return in, testenv.Run(t, 45*time.Second, in.Run)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freshClient returns a Kafka client with its own transport, so that no metadata
// cached before the test's topics existed is used.
func freshClient(t *testing.T, addr string) *kafka.Client {
	tr := &kafka.Transport{MetadataTTL: 100 * time.Millisecond}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: tr}
}

// readTopic returns every record of topic.
func readTopic(t *testing.T, addr, topic string) []record {
	t.Helper()
	cl := freshClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var parts []int
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	first, next, err := partitionBounds(ctx, cl, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, p := range parts {
		if err := readRange(ctx, cl, topic, p, first[p], next[p], func(r record) { out = append(out, r) }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkEvents asserts that topic holds exactly the events frames[0:n], once each,
// with the right key, untouched value and headers.
func checkEvents(t *testing.T, cfg Config, frames [][]byte, since time.Time) []record {
	t.Helper()
	recs := readTopic(t, cfg.Kafka.Brokers[0], cfg.Kafka.Topic)
	byID := map[string]record{}
	for _, r := range recs {
		id := r.Headers[wire.HeaderMetaID]
		if _, dup := byID[id]; dup {
			t.Errorf("meta.id %s written twice", id)
		}
		byID[id] = r
	}
	if len(recs) != len(frames) {
		t.Errorf("topic holds %d records, want %d", len(recs), len(frames))
	}
	for i, data := range frames {
		e, err := event.Parse(data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		r, ok := byID[e.ID]
		if !ok {
			t.Errorf("frame %d (meta.id %s) missing from Kafka", i, e.ID)
			continue
		}
		if string(r.Key) != e.Wiki {
			t.Errorf("frame %d: key %q, want %q", i, r.Key, e.Wiki)
		}
		if !bytes.Equal(r.Value, data) {
			t.Errorf("frame %d: value differs from the feed's bytes", i)
		}
		if got, want := r.Headers[wire.HeaderSubject], e.Subject(wire.SubjectPrefix); got != want {
			t.Errorf("frame %d: %s header %q, want %q", i, wire.HeaderSubject, got, want)
		}
		if got := r.Headers[wire.HeaderSSEID]; got != frameID(i) {
			t.Errorf("frame %d: %s header %q, want %q", i, wire.HeaderSSEID, got, frameID(i))
		}
		if rec := r.received(); rec < since.UnixNano() || rec > time.Now().UnixNano() {
			t.Errorf("frame %d: %s header %q is not the receipt time", i, wire.HeaderReceived, r.Headers[wire.HeaderReceived])
		}
		if _, ok := r.Headers[HeaderResumeID]; !ok {
			t.Errorf("frame %d: no %s header", i, HeaderResumeID)
		}
	}
	return recs
}

func TestPublishesRecording(t *testing.T) {
	for _, crlf := range []bool{false, true} {
		t.Run(fmt.Sprintf("crlf=%v", crlf), func(t *testing.T) {
			t.Parallel()
			frames := recorded(t, 300)
			feed := newTestFeed(t, frames, crlf)
			cfg := testConfig(t, feed.srv.URL+"/v2/stream/recentchange")
			cfg.Since = "10m"
			began := time.Now()
			in, stop := startIngest(t, cfg)
			waitFor(t, "300 events published", func() bool { return in.Stats().Published.Load() == 300 })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			reqs := feed.requests()
			first := reqs[0]
			if first.lastEventID != "" {
				t.Errorf("first connection sent Last-Event-ID %q on an empty topic", first.lastEventID)
			}
			ms, err := strconv.ParseInt(first.since, 10, 64)
			want := began.Add(-10 * time.Minute)
			if err != nil || ms < want.Add(-time.Minute).UnixMilli() || ms > want.Add(time.Minute).UnixMilli() {
				t.Errorf("since=%q, want about %d (10 minutes ago)", first.since, want.UnixMilli())
			}
			if !strings.HasPrefix(first.agent, "wikiflow/"+Version+" ("+DefaultContact+") ") {
				t.Errorf("User-Agent %q", first.agent)
			}

			checkEvents(t, cfg, frames, began)
			st := in.Stats()
			if st.Frames.Load() != 300 || st.Duplicates.Load() != 0 || st.DeadLettered.Load() != 0 || st.Canaries.Load() != 0 || st.Lost.Load() != 0 {
				t.Errorf("stats: frames %d duplicates %d dead %d canaries %d lost %d", st.Frames.Load(), st.Duplicates.Load(), st.DeadLettered.Load(), st.Canaries.Load(), st.Lost.Load())
			}
			if got := in.LastEventID(); got != frameID(299) {
				t.Errorf("LastEventID %q, want %q", got, frameID(299))
			}
			// ingest created the topic with the configured partitions.
			cl := freshClient(t, cfg.Kafka.Brokers[0])
			md, err := cl.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{cfg.Kafka.Topic, cfg.DeadLetterTopic}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tp := range md.Topics {
				if tp.Error != nil || len(tp.Partitions) != 3 {
					t.Errorf("topic %s: %d partitions, err %v; want 3", tp.Name, len(tp.Partitions), tp.Error)
				}
			}
		})
	}
}

func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	frames := recorded(t, 400)
	feed := newTestFeed(t, frames, false, plan{count: 200})
	cfg := testConfig(t, feed.srv.URL)
	began := time.Now()

	first, stop := startIngest(t, cfg)
	waitFor(t, "200 events published", func() bool { return first.Stats().Published.Load() == 200 })
	if err := stop(); err != nil {
		t.Fatalf("first Run: %v", err)
	}

	// The position a restart must use: the resume header of the newest record.
	recs := readTopic(t, cfg.Kafka.Brokers[0], cfg.Kafka.Topic)
	if len(recs) != 200 {
		t.Fatalf("%d records after the first run, want 200", len(recs))
	}
	newest := recs[0]
	for _, r := range recs {
		if r.received() > newest.received() {
			newest = r
		}
	}
	wantID := newest.Headers[HeaderResumeID]
	if wantID == "" {
		wantID = newest.Headers[wire.HeaderSSEID]
	}

	second, stop2 := startIngest(t, cfg)
	waitFor(t, "the second run to connect", func() bool { return len(feed.requests()) >= 2 })
	got := feed.requests()[1].lastEventID
	if got != wantID {
		t.Fatalf("restart sent Last-Event-ID %q, want %q", got, wantID)
	}
	k := frameIndex(t, got)
	if k > 199 {
		t.Fatalf("restart resumes after frame %d, beyond the 200 written", k)
	}
	waitFor(t, "the remaining 200 events", func() bool { return second.Stats().Published.Load() == 200 })
	if err := stop2(); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	checkEvents(t, cfg, frames, began)
	// The feed repeats frames k..199; the ids read back from Kafka skip them all.
	if d := second.Stats().Duplicates.Load(); d != int64(200-k) {
		t.Errorf("second run skipped %d duplicates, want %d", d, 200-k)
	}
}

func TestReconnects(t *testing.T) {
	const n = 120
	tests := []struct {
		name  string
		plans []plan
		idle  time.Duration
		check func(t *testing.T, st *Stats, reqs []request)
	}{
		{
			name: "idle timeout", plans: []plan{{count: 50}}, idle: 500 * time.Millisecond,
			check: func(t *testing.T, st *Stats, reqs []request) {
				if st.IdleTimeouts.Load() < 1 {
					t.Error("no idle timeout counted")
				}
				if reqs[1].lastEventID != frameID(49) {
					t.Errorf("reconnected with Last-Event-ID %q, want %q", reqs[1].lastEventID, frameID(49))
				}
			},
		},
		{
			name: "429 with Retry-After", plans: []plan{{status: 429, retryAfter: "1"}},
			check: func(t *testing.T, st *Stats, reqs []request) {
				if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
					t.Errorf("retried %s after a 429 asking for 1s", gap)
				}
				if st.HTTPErrors.Load() != 1 {
					t.Errorf("HTTPErrors %d, want 1", st.HTTPErrors.Load())
				}
			},
		},
		{
			name: "5xx", plans: []plan{{status: 503}, {status: 500}},
			check: func(t *testing.T, st *Stats, reqs []request) {
				if st.HTTPErrors.Load() != 2 || st.Reconnects.Load() < 2 {
					t.Errorf("HTTPErrors %d reconnects %d, want 2 and >= 2", st.HTTPErrors.Load(), st.Reconnects.Load())
				}
			},
		},
		{
			// The error frame is counted and the stream read on: the connection
			// ends only when the feed then goes silent.
			name: "error frame", plans: []plan{{count: 50, end: "error"}}, idle: 500 * time.Millisecond,
			check: func(t *testing.T, st *Stats, reqs []request) {
				if st.ErrorFrames.Load() != 1 {
					t.Errorf("ErrorFrames %d, want 1", st.ErrorFrames.Load())
				}
				if st.IdleTimeouts.Load() < 1 {
					t.Error("the connection ended before the feed went silent after its error frame")
				}
				if reqs[1].lastEventID != frameID(49) {
					t.Errorf("reconnected with Last-Event-ID %q, want %q", reqs[1].lastEventID, frameID(49))
				}
			},
		},
		{
			name: "cut mid-frame", plans: []plan{{count: 50, end: "cut"}},
			check: func(t *testing.T, st *Stats, reqs []request) {
				if st.Truncated.Load() != 1 {
					t.Errorf("Truncated %d, want 1", st.Truncated.Load())
				}
				if reqs[1].lastEventID != frameID(49) {
					t.Errorf("reconnected with Last-Event-ID %q, want %q (the cut frame 50 must not count)", reqs[1].lastEventID, frameID(49))
				}
				if st.Frames.Load() != n+1 || st.Duplicates.Load() != 1 {
					t.Errorf("frames %d duplicates %d, want %d and 1", st.Frames.Load(), st.Duplicates.Load(), n+1)
				}
			},
		},
		{
			name: "server closes", plans: []plan{{count: 50, end: "close"}},
			check: func(t *testing.T, st *Stats, reqs []request) {
				if reqs[1].lastEventID != frameID(49) {
					t.Errorf("reconnected with Last-Event-ID %q, want %q", reqs[1].lastEventID, frameID(49))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			frames := recorded(t, n)
			feed := newTestFeed(t, frames, false, tc.plans...)
			cfg := testConfig(t, feed.srv.URL)
			if tc.idle > 0 {
				cfg.IdleTimeout = tc.idle
			}
			began := time.Now()
			in, stop := startIngest(t, cfg)
			waitFor(t, "all events published", func() bool { return in.Stats().Published.Load() == n })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			reqs := feed.requests()
			if len(reqs) < len(tc.plans)+1 {
				t.Fatalf("%d connections, want at least %d", len(reqs), len(tc.plans)+1)
			}
			tc.check(t, in.Stats(), reqs)
			checkEvents(t, cfg, frames, began)
		})
	}
}

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name     string
		existing bool // topics created beforehand with Kafka's default size limit
		maxEvent int
		cut      int // size the oversize dead letter is cut to
	}{
		{name: "existing topics, 256 KiB events", existing: true, maxEvent: 256 << 10, cut: 256 << 10},
		{name: "created topics, 1 MiB events", maxEvent: 1 << 20, cut: 1 << 20},
		// Kafka refuses a 1 MiB dead letter on a default topic: it is cut further.
		{name: "existing topics, 1 MiB events", existing: true, maxEvent: 1 << 20, cut: shrunkSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testDeadLetters(t, tc.existing, tc.maxEvent, tc.cut)
		})
	}
}

func testDeadLetters(t *testing.T, existing bool, maxEvent, cut int) {
	addr := testenv.KafkaAddr(t)
	good := recorded(t, 40)
	malformed := []byte(`{"meta": {"id": oops`)
	noID := []byte(`{"meta":{"domain":"en.wikipedia.org","dt":"2024-05-01T12:00:00Z"},"wiki":"enwiki","type":"edit"}`)
	canary := []byte(`{"$schema":"/mediawiki/recentchange/1.0.0","meta":{"domain":"canary","id":"c0ffee","dt":"2024-05-01T12:00:00Z","stream":"mediawiki.recentchange"}}`)
	huge := append([]byte(`{"meta":{"id":"big-1","domain":"en.wikipedia.org","dt":"2024-05-01T12:00:00Z"},"wiki":"enwiki","comment":"`),
		bytes.Repeat([]byte("x"), 2<<20)...)
	huge = append(huge, `"}`...)

	var frames [][]byte
	frames = append(frames, good[:10]...)
	frames = append(frames, malformed) // 10
	frames = append(frames, good[10:20]...)
	frames = append(frames, huge) // 21
	frames = append(frames, good[20:30]...)
	frames = append(frames, noID, canary) // 32, 33
	frames = append(frames, good[30:]...)

	feed := newTestFeed(t, frames, false)
	cfg := testConfig(t, feed.srv.URL)
	if existing {
		cfg.Kafka.Topic = testenv.Topic(t, addr, 3)
		cfg.DeadLetterTopic = testenv.Topic(t, addr, 1)
	}
	cfg.MaxEventSize = maxEvent
	began := time.Now()
	in, stop := startIngest(t, cfg)
	st := in.Stats()
	waitFor(t, "40 events and 3 dead letters", func() bool {
		return st.Published.Load() == 40 && st.DeadLettered.Load() == 3
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st.Frames.Load() != int64(len(frames)) || st.Canaries.Load() != 1 || st.DeadOversize.Load() != 1 || st.DeadInvalid.Load() != 2 || st.Lost.Load() != 0 {
		t.Errorf("frames %d canaries %d oversize %d invalid %d lost %d; want %d 1 1 2 0",
			st.Frames.Load(), st.Canaries.Load(), st.DeadOversize.Load(), st.DeadInvalid.Load(), st.Lost.Load(), len(frames))
	}

	// The good events all arrived, in spite of the bad frames between them.
	recs := readTopic(t, addr, cfg.Kafka.Topic)
	if len(recs) != 40 {
		t.Fatalf("events topic holds %d records, want 40", len(recs))
	}
	values := map[string]bool{}
	for _, r := range recs {
		values[string(r.Value)] = true
	}
	for i, g := range good {
		if !values[string(g)] {
			t.Errorf("good event %d missing", i)
		}
	}

	dead := readTopic(t, addr, cfg.DeadLetterTopic)
	if len(dead) != 3 {
		t.Fatalf("dead-letter topic holds %d records, want 3", len(dead))
	}
	bySSE := map[string]record{}
	for _, r := range dead {
		if string(r.Key) != "invalid" {
			t.Errorf("dead letter key %q, want \"invalid\"", r.Key)
		}
		if rec := r.received(); rec < began.UnixNano() {
			t.Errorf("dead letter without a receipt time: %v", r.Headers)
		}
		bySSE[r.Headers[wire.HeaderSSEID]] = r
	}
	check := func(idx int, reason string, value []byte) record {
		t.Helper()
		r, ok := bySSE[frameID(idx)]
		if !ok {
			t.Fatalf("no dead letter for frame %d", idx)
		}
		if !strings.Contains(r.Headers[wire.HeaderReason], reason) {
			t.Errorf("frame %d: reason %q does not contain %q", idx, r.Headers[wire.HeaderReason], reason)
		}
		if !bytes.Equal(r.Value, value) {
			t.Errorf("frame %d: dead letter value (%d bytes) is not the expected %d bytes", idx, len(r.Value), len(value))
		}
		return r
	}
	check(10, "invalid event", malformed)
	check(32, "no meta.id", noID)
	r := check(21, "oversize", huge[:cut])
	size := r.Headers[HeaderOriginalSize]
	n, err := strconv.Atoi(strings.TrimPrefix(size, "~"))
	if err != nil || n < len(huge)-128<<10 || n > len(huge)+128<<10 {
		t.Errorf("original size header %q, want about %d", size, len(huge))
	}
}

// TestShutdownFlushes stops ingest while every event read is still in a batch
// that has not been written: Run must write them all before it returns.
func TestShutdownFlushes(t *testing.T) {
	t.Parallel()
	frames := recorded(t, 150)
	feed := newTestFeed(t, frames, false)
	cfg := testConfig(t, feed.srv.URL)
	cfg.BatchSize = 10000
	cfg.BatchTimeout = time.Hour
	began := time.Now()
	in, stop := startIngest(t, cfg)
	waitFor(t, "150 frames read", func() bool { return in.Stats().Frames.Load() == 150 })
	if p := in.Stats().Published.Load(); p != 0 {
		t.Fatalf("%d events published before the batch was due", p)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := in.Stats().Published.Load(); p != 150 {
		t.Fatalf("published %d after shutdown, want 150", p)
	}
	checkEvents(t, cfg, frames, began)
}
