package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/recording"
)

// fakeClock replaces the feed's sleep: it records every delay asked for, moves
// its own time on by it at once, and ends the run after stopAfter delays.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Duration // time since the first connection
	delays    []time.Duration
	starts    []time.Duration // when each connection after the first began
	stopAfter int
	cancel    context.CancelFunc
	// stats, when set, has its Degraded reason recorded at every delay.
	stats   *Stats
	reasons []string
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delays = append(c.delays, d)
	c.now += d
	c.starts = append(c.starts, c.now)
	if c.stats != nil {
		c.reasons = append(c.reasons, c.stats.Degraded())
	}
	if len(c.delays) >= c.stopAfter {
		c.cancel()
		return false
	}
	return ctx.Err() == nil
}

// failingFeeds are feeds on which every connection fails at once, each in its
// own way; the first connection of "duplicates" publishes its one event, and
// every later one brings only that event again.
func failingFeeds(t *testing.T) map[string]string {
	ev := recording.Events()[0].Data
	frame := "event: message\nid: [1]\ndata: " + string(ev) + "\n\n"
	handlers := map[string]http.HandlerFunc{
		"503": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) },
		"empty stream": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ":ok\n\n")
		},
		"error frame": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ":ok\n\nevent: error\ndata: {\"message\":\"upstream failure\"}\n\n")
		},
		"duplicates and an error frame": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ":ok\n\n"+frame+"event: error\ndata: {\"message\":\"upstream failure\"}\n\n")
		},
		"cut mid-frame": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ":ok\n\n"+frame[:len(frame)/2])
		},
	}
	urls := map[string]string{}
	for name, h := range handlers {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls[name] = srv.URL
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	urls["unreachable"] = "http://" + l.Addr().String()
	l.Close()
	return urls
}

// runFeed runs the feed loop of an Ingester for url on a fake clock until it has
// asked for n delays, and returns the ingester and the clock. Nothing is written
// to Kafka: the queued events stay in a channel.
func runFeed(t *testing.T, url string, n int) (*Ingester, *fakeClock) {
	t.Helper()
	cfg := DefaultConfig() // backoff 1s to 60s
	cfg.URL = url
	in, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := &fakeClock{stopAfter: n, cancel: cancel, stats: in.Stats()}
	f := &feed{in: in, out: make(chan item, 10), seen: newRecentIDs(10), sleep: clock.sleep}
	f.run(ctx)
	if len(clock.delays) < n {
		t.Fatalf("the feed loop ended after %d delays, want %d", len(clock.delays), n)
	}
	return in, clock
}

// TestFailingFeedBacksOff checks that against a feed that fails at once on every
// connection ingest makes at most ten connections in the first minute and backs
// off to its maximum: every delay is at least half of a ceiling that doubles
// from BackoffMin up to BackoffMax (jitter only spreads it over the upper half).
// Before, a connection that brought any frame, even a duplicate, reset the
// backoff: 60 connections a minute for ever.
func TestFailingFeedBacksOff(t *testing.T) {
	for name, url := range failingFeeds(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, clock := runFeed(t, url, 20)
			delays := clock.delays
			if name == "duplicates and an error frame" {
				// The first connection published the event: that one was progress.
				delays = delays[1:]
			}
			checkStuck(t, in, clock, name, len(delays))
			ceiling := time.Second
			for i, d := range delays {
				if lo := max(ceiling/2, time.Second); d < lo || d > ceiling {
					t.Errorf("delay %d after %d failures: %v, want within [%v, %v] (all: %v)", i, i+1, d, lo, ceiling, delays)
				}
				ceiling = min(2*ceiling, time.Minute)
			}
			if last := delays[len(delays)-1]; last < 30*time.Second {
				t.Errorf("last delay %v: never backed off to the maximum", last)
			}
			inFirstMinute := 1
			for _, at := range clock.starts {
				if at < time.Minute {
					inFirstMinute++
				}
			}
			if inFirstMinute > 10 {
				t.Errorf("%d connections in the first minute, want at most 10 (delays %v)", inFirstMinute, clock.delays)
			}
		})
	}
}

// TestRetryAfterIsHonoured checks that a 429 or 503 asking for a delay longer than
// the backoff gets it.
func TestRetryAfterIsHonoured(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				http.Error(w, strings.ToLower(http.StatusText(status)), status)
			}))
			t.Cleanup(srv.Close)
			_, clock := runFeed(t, srv.URL, 3)
			for i, d := range clock.delays {
				if d < 7*time.Second {
					t.Errorf("delay %d: %v, want at least the 7s of Retry-After", i, d)
				}
			}
		})
	}
}

// checkStuck checks how ingest reports a feed that failed failures times in a
// row: the metrics, and the degraded reason from the first failure on for an
// unreachable feed, from the third on otherwise, naming the position.
func checkStuck(t *testing.T, in *Ingester, clock *fakeClock, name string, failures int) {
	t.Helper()
	st := in.Stats()
	if got := st.ConsecutiveFailures.Load(); got != int64(failures) {
		t.Errorf("ConsecutiveFailures %d, want %d", got, failures)
	}
	if got := st.FailedConnections.Load(); got != int64(failures) {
		t.Errorf("FailedConnections %d, want %d", got, failures)
	}
	reasons := clock.reasons[len(clock.reasons)-failures:]
	for i, r := range reasons {
		switch {
		case name == "unreachable":
			if !strings.HasPrefix(r, "feed unreachable: cannot reach 127.0.0.1:") || !strings.Contains(r, "offline? use SOURCE=sample") {
				t.Errorf("after %d failures: reason %q", i+1, r)
			}
		case i+1 < degradeAfter:
			if r != "" {
				t.Errorf("degraded after %d failures already: %q", i+1, r)
			}
		default:
			want := fmt.Sprintf("no progress at position %s after %d connections: ", in.LastEventID(), i+1)
			if in.LastEventID() == "" {
				want = fmt.Sprintf("no progress at position live (no position yet) after %d connections: ", i+1)
			}
			if !strings.HasPrefix(r, want) {
				t.Errorf("after %d failures: reason %q, want it to start with %q", i+1, r, want)
			}
		}
	}
	if name == "duplicates and an error frame" && in.LastEventID() != "[1]" {
		t.Errorf("position %q, want [1]", in.LastEventID())
	}
}

// TestProgressClearsDegraded checks that a connection with a new event after a
// run of failures clears the degraded state and the stuck gauge, and that
// /healthz (served by internal/obs as the wikiflow command does) shows both.
func TestProgressClearsDegraded(t *testing.T) {
	ev := recording.Events()[0].Data
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if n <= 5 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, ":ok\n\nevent: message\nid: [1]\ndata: "+string(ev)+"\n\n")
	}))
	t.Cleanup(srv.Close)
	in, clock := runFeed(t, srv.URL, 6)
	if !strings.HasPrefix(clock.reasons[4], "no progress at position live (no position yet) after 5 connections: HTTP 503") {
		t.Errorf("after 5 failures: reason %q", clock.reasons[4])
	}
	if r := in.Stats().Degraded(); r != "" || in.Stats().ConsecutiveFailures.Load() != 0 {
		t.Errorf("after progress: reason %q, ConsecutiveFailures %d; want none", r, in.Stats().ConsecutiveFailures.Load())
	}
	health := func() (status, reason string) {
		h := obs.Handler(obs.Stage{Component: "ingest", Value: in, Stats: func() any { return in.Stats() }})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		var body struct{ Status, Reason string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/healthz: %v: %s", err, rec.Body.Bytes())
		}
		return body.Status, body.Reason
	}
	if status, reason := health(); status != "ok" || reason != "" {
		t.Errorf("/healthz after progress: %s %q", status, reason)
	}
	in.Stats().setDegraded("no progress at position [1] after 3 connections: test")
	if status, reason := health(); status != "degraded" || reason != "no progress at position [1] after 3 connections: test" {
		t.Errorf("/healthz while stuck: %s %q", status, reason)
	}
}
