package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// testNS is the namespace the fixture's pointer names (not the default, so that
// reading the pointer is exercised).
const testNS = "fixture"

// fixture is the bundled recording written into Redis following keys.go, with the
// expected answers computed from the same events in Go.
type fixture struct {
	rdb     *redis.Client
	base    string
	events  []event.Event // with the fixture's event times
	asOf    time.Time
	asOfMin int64
	updated time.Time
}

// fixtureTime moves the older recorded blocks (see internal/recording's
// SOURCES.md) into the 24 hours before the newest block, so that every kind of
// bucket is used: block D (lines 248-) keeps its times; block B (4-103) goes 40
// minutes before as_of; block C (104-247) goes to the first minutes of the 24 h
// window (its partial first hour); block A (1-3) just before the 24 h window.
func fixtureTimes(t *testing.T) ([]event.Event, time.Time) {
	t.Helper()
	recs := recording.Events()
	evs := make([]event.Event, 0, len(recs))
	lines := make([]int, 0, len(recs))
	for _, r := range recs {
		e, err := event.Parse(r.Data)
		if err != nil {
			t.Fatalf("line %d: %v", r.Line, err)
		}
		evs = append(evs, e)
		lines = append(lines, r.Line)
	}
	block := func(line int) byte {
		switch {
		case line <= 3:
			return 'A'
		case line <= 103:
			return 'B'
		case line <= 247:
			return 'C'
		}
		return 'D'
	}
	first := map[byte]time.Time{}
	var asOf time.Time
	for i, e := range evs {
		b := block(lines[i])
		if f, ok := first[b]; !ok || e.Time.Before(f) {
			first[b] = e.Time
		}
		if b == 'D' && e.Time.After(asOf) {
			asOf = e.Time
		}
	}
	asOfMin := asOf.Unix() / 60
	target := map[byte]time.Time{
		'A': time.Unix((asOfMin-1440)*60, 0).Add(5 * time.Second),
		'B': asOf.Add(-40 * time.Minute),
		'C': time.Unix((asOfMin-1439)*60, 0).Add(10 * time.Second),
	}
	for i := range evs {
		b := block(lines[i])
		if b != 'D' {
			evs[i].Time = target[b].Add(evs[i].Time.Sub(first[b]))
		}
	}
	return evs, asOf
}

// newFixture writes the fixture under a fresh base name.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := testenv.Redis(t)
	f := &fixture{rdb: rdb, base: testenv.Prefix(t, rdb), updated: time.Now()}
	f.events, f.asOf = fixtureTimes(t)
	f.asOfMin = f.asOf.Unix() / 60
	ctx := context.Background()
	k := projection.New(f.base, testNS)
	pipe := rdb.Pipeline()
	for i := range f.events {
		e := &f.events[i]
		pipe.HIncrBy(ctx, k.Legacy(), e.Domain, 1)
		min, hour := e.Time.Unix()/60, e.Time.Unix()/3600
		for _, bk := range []func(projection.Kind) string{
			k.All,
			func(kind projection.Kind) string { return k.MinuteN(kind, min) },
			func(kind projection.Kind) string { return k.HourN(kind, hour) },
		} {
			pipe.HIncrBy(ctx, bk(projection.KindCube), projection.CubeField(e.Domain, e.Wiki, e.Type, e.Bot), 1)
			pipe.HIncrBy(ctx, bk(projection.KindNamespace), strconv.Itoa(e.Namespace), 1)
			pipe.HIncrBy(ctx, bk(projection.KindEditor), e.EditorKind(), 1)
			if e.Minor {
				pipe.HIncrBy(ctx, bk(projection.KindMinor), e.Domain, 1)
			}
		}
		for _, key := range []func(projection.Kind) string{
			func(kind projection.Kind) string { return k.MinuteN(kind, min) },
			func(kind projection.Kind) string { return k.HourN(kind, hour) },
		} {
			if e.Title != "" {
				pipe.ZIncrBy(ctx, key(projection.KindPages), 1, e.Domain+projection.FieldSep+e.Title)
			}
			if e.User != "" {
				pipe.ZIncrBy(ctx, key(projection.KindEditors), 1, e.Domain+projection.FieldSep+e.User)
				pipe.PFAdd(ctx, key(projection.KindUsers), e.User)
			}
		}
	}
	pipe.HSet(ctx, k.Meta(), projection.MetaAsOf, f.asOf.UnixMilli(), projection.MetaUpdated, f.updated.UnixMilli(), projection.MetaEvents, len(f.events))
	pipe.Set(ctx, k.Pointer(), testNS, 0)
	// A decoy in the default namespace: read only if the pointer were ignored.
	live := projection.New(f.base, projection.DefaultNamespace)
	pipe.HSet(ctx, live.Meta(), projection.MetaAsOf, f.asOf.Add(time.Hour).UnixMilli(), projection.MetaUpdated, f.updated.UnixMilli())
	pipe.HIncrBy(ctx, live.All(projection.KindCube), projection.CubeField("decoy.example.org", "decoywiki", "edit", false), 7)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("write fixture: %v", err)
	}
	return f
}

// window is the set of fixture events inside a window of n minutes (0 = all).
func (f *fixture) window(n int64) []event.Event {
	if n == 0 {
		return f.events
	}
	var out []event.Event
	for _, e := range f.events {
		m := e.Time.Unix() / 60
		if m > f.asOfMin-n && m <= f.asOfMin {
			out = append(out, e)
		}
	}
	return out
}

// hourWindow is the set of events in the last h hours of buckets up to as_of's hour.
func (f *fixture) hourWindow(h int64) []event.Event {
	last := f.asOf.Unix() / 3600
	var out []event.Event
	for _, e := range f.events {
		if hr := e.Time.Unix() / 3600; hr > last-h && hr <= last {
			out = append(out, e)
		}
	}
	return out
}

// countBy counts events by key (empty keys skipped).
func countBy(evs []event.Event, key func(*event.Event) string) map[string]int64 {
	out := map[string]int64{}
	for i := range evs {
		if k := key(&evs[i]); k != "" {
			out[k]++
		}
	}
	return out
}

// topOf returns the n largest entries of m, ties by key.
func topOf(m map[string]int64, n int) []group {
	g := make([]group, 0, len(m))
	for k, v := range m {
		g = append(g, group{k, v})
	}
	sort.Slice(g, func(i, j int) bool {
		if g[i].count != g[j].count {
			return g[i].count > g[j].count
		}
		return g[i].key < g[j].key
	})
	if n > 0 && len(g) > n {
		g = g[:n]
	}
	return g
}

// newServer returns a server reading the fixture's base name, with no stage
// metrics pages (the defaults would scrape whatever runs on the stack's ports).
func newServer(t *testing.T, base string, mod func(*Config)) *Server {
	t.Helper()
	return newServerLog(t, base, io.Discard, mod)
}

// newServerLog is newServer logging to w.
func newServerLog(t *testing.T, base string, w io.Writer, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Redis.URL = testenv.RedisURL(t)
	cfg.Base = base
	cfg.StageMetrics = nil
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// response is one answer of the app.
type response struct {
	status int
	header http.Header
	body   []byte
}

// get sends a GET through app.Test.
func get(t *testing.T, s *Server, target string, hdr ...string) response {
	t.Helper()
	return do(t, s, http.MethodGet, target, hdr...)
}

func do(t *testing.T, s *Server, method, target string, hdr ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.App().Test(req, 10_000)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// decode unmarshals a JSON body into one of the API's declared bodies, failing
// the test on error, and on a field the type does not declare.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", truncate(string(r.body)), err)
	}
	return v
}

func truncate(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

func equalCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d keys, want %d", what, len(got), len(want))
	}
	var bad []string
	for k, v := range want {
		if got[k] != v {
			bad = append(bad, k+": got "+strconv.FormatInt(got[k], 10)+" want "+strconv.FormatInt(v, 10))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, k+": unexpected")
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		if len(bad) > 10 {
			bad = bad[:10]
		}
		t.Errorf("%s differs:\n  %s", what, strings.Join(bad, "\n  "))
	}
}
