package tui

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI serves contract-shaped JSON written here, independent of the api
// package: /stats, /stats/timeseries, /stats/top/pages, /stats/top/editors and
// /stats/stream.
type fakeAPI struct {
	srv *httptest.Server

	mu       sync.Mutex
	down     bool                        // answer 503 with the contract's error shape
	counts   map[string]map[string]int64 // window → domain → count
	types    map[string]int64
	series   map[string][]int64 // domain → per-minute points (15)
	pages    []pageItem
	editors  []editorItem
	noStream bool
	noTypes  bool          // omit "types" from /stats (forces by=type)
	kill     chan struct{} // closed to end the open streams
	changed  chan struct{} // closed when counts change (streams push)
	queries  []string
	asOf     time.Time
	updated  time.Time
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		counts: map[string]map[string]int64{
			"5m": {"commons.wikimedia.org": 500, "www.wikidata.org": 300, "en.wikipedia.org": 200, "de.wikipedia.org": 50, "fr.wiktionary.org": 10},
		},
		types: map[string]int64{"edit": 700, "categorize": 200, "log": 100, "new": 60},
		series: map[string][]int64{
			"commons.wikimedia.org": {30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 5},
			"www.wikidata.org":      {20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 2},
			"en.wikipedia.org":      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 90, 90, 90, 90, 1},
			"de.wikipedia.org":      {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0},
		},
		pages: []pageItem{
			{Domain: "en.wikipedia.org", Title: "Main Page", Count: 12},
			{Domain: "commons.wikimedia.org", Title: "File:Example.jpg", Count: 7},
		},
		editors: []editorItem{{Domain: "en.wikipedia.org", User: "ExampleEditor", Count: 9}, {Domain: "en.wikipedia.org", User: "AnotherOne", Count: 4}},
		kill:    make(chan struct{}),
		changed: make(chan struct{}),
		asOf:    time.Date(2026, 5, 5, 11, 18, 26, 0, time.UTC),
		updated: time.Now().UTC(),
	}
	for _, w := range Windows {
		if _, ok := f.counts[w]; ok {
			continue
		}
		m := map[string]int64{}
		for d, c := range f.counts["5m"] {
			m[d] = c * int64(len(w)) // different figures per window
		}
		m["window-"+w+".example.org"] = 1
		f.counts[w] = m
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.mu.Lock()
		select {
		case <-f.kill:
		default:
			close(f.kill)
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

// setDown makes the API fail (503) or answer again; going down ends open streams.
func (f *fakeAPI) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		close(f.kill)
	} else {
		f.kill = make(chan struct{})
	}
}

// setCount changes one count of a window and wakes the streams.
func (f *fakeAPI) setCount(window, domain string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[window][domain] = n
	f.updated = time.Now().UTC()
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeAPI) queried(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.queries {
		if strings.HasPrefix(q, prefix) {
			out = append(out, q)
		}
	}
	return out
}

// onDomain returns the items of domain (all of them when domain is ""), never nil.
func onDomain[T any](items []T, domain string, of func(T) string) []T {
	out := []T{}
	for _, it := range items {
		if domain == "" || of(it) == domain {
			out = append(out, it)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"status": status, "code": code, "message": msg}})
}

// statsBody is the /stats JSON for the query; the caller holds f.mu.
func (f *fakeAPI) statsBody(q map[string][]string) (map[string]any, bool) {
	window := "all"
	if v := q["window"]; len(v) > 0 {
		window = v[0]
	}
	counts, ok := f.counts[window]
	if !ok {
		return nil, false
	}
	by := "domain"
	if v := q["by"]; len(v) > 0 {
		by = v[0]
	}
	// Copies: the body is encoded after f.mu is released.
	stats := maps.Clone(counts)
	if by == "type" {
		stats = maps.Clone(f.types)
	}
	var total int64
	for _, c := range counts {
		total += c
	}
	body := map[string]any{
		"stats": stats, "total": total, "window": window, "by": by,
		"as_of":             f.asOf.Format(time.RFC3339),
		"updated_at":        f.updated.Format(time.RFC3339Nano),
		"freshness_seconds": time.Since(f.updated).Seconds(),
		"namespace":         "live",
		"bot_share":         0.25,
		"edits_per_minute":  float64(total) / 5,
	}
	if !f.noTypes {
		body["types"] = maps.Clone(f.types)
	}
	return body, true
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	down, kill := f.down, f.kill
	f.mu.Unlock()
	if down {
		apiErr(w, http.StatusServiceUnavailable, "unavailable", "redis unreachable")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/stats":
		body, ok := f.statsBody(q)
		if !ok {
			apiErr(w, http.StatusBadRequest, "bad_parameter", "bad window")
			return
		}
		writeJSON(w, http.StatusOK, body)
	case "/stats/timeseries":
		window := q.Get("window")
		n := 15
		if window == "1h" {
			n = 60
		}
		times := make([]string, n)
		for i := range times {
			times[i] = f.asOf.Truncate(time.Minute).Add(time.Duration(i-n+1) * time.Minute).Format(time.RFC3339)
		}
		body := map[string]any{"window": window, "step_seconds": 60, "as_of": f.asOf.Format(time.RFC3339), "times": times}
		total := make([]int64, n)
		if dom := q.Get("domain"); dom != "" {
			pts := f.series[dom]
			for i := range total {
				if j := i - (n - len(pts)); j >= 0 && j < len(pts) {
					total[i] = pts[j]
				}
			}
		} else {
			for _, pts := range f.series {
				for i, p := range pts {
					total[i] += p
				}
			}
		}
		body["total"] = total
		if q.Get("by") == "domain" {
			body["series"] = f.series
		}
		writeJSON(w, http.StatusOK, body)
	case "/stats/top/pages", "/stats/top/editors":
		var items any = onDomain(f.pages, q.Get("domain"), func(it pageItem) string { return it.Domain })
		if r.URL.Path == "/stats/top/editors" {
			items = onDomain(f.editors, q.Get("domain"), func(it editorItem) string { return it.Domain })
		}
		body := map[string]any{"window": q.Get("window"), "as_of": f.asOf.Format(time.RFC3339), "items": items}
		if r.URL.Path == "/stats/top/editors" {
			body["unique_editors"] = 123
		}
		writeJSON(w, http.StatusOK, body)
	case "/stats/stream":
		if f.noStream {
			apiErr(w, http.StatusNotFound, "not_found", "no such route")
			return
		}
		f.mu.Unlock()
		f.stream(w, r, q, kill)
		f.mu.Lock()
	default:
		apiErr(w, http.StatusNotFound, "not_found", "no such route")
	}
}

// stream sends the /stats JSON now and whenever the counts change.
func (f *fakeAPI) stream(w http.ResponseWriter, r *http.Request, q map[string][]string, kill chan struct{}) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fmt.Fprint(w, ": ok\n\n")
	fl.Flush()
	for {
		f.mu.Lock()
		body, _ := f.statsBody(q)
		changed := f.changed
		f.mu.Unlock()
		data, _ := json.Marshal(body)
		fmt.Fprintf(w, "event: stats\nid: %d\ndata: %s\n\n", time.Now().UnixMilli(), data)
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-kill:
			return
		case <-changed:
		}
	}
}

// domains lists the domains of rows in order.
func domains(rows []row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Domain
	}
	return out
}
