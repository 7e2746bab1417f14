package tui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func testModel(t *testing.T, f *fakeAPI, window string) *model {
	t.Helper()
	api, err := newClient(f.srv.URL, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return newModel(api, window, 10*time.Second, false, slog.New(slog.DiscardHandler), &Stats{})
}

// pollOnce runs one synchronous poll round and applies it.
func pollOnce(t *testing.T, m *model) time.Duration {
	t.Helper()
	m.mu.Lock()
	req := pollRequest{window: m.window, domain: m.selected}
	m.mu.Unlock()
	return m.apply(m.poll(context.Background(), req))
}

func TestModelSorting(t *testing.T) {
	f := newFakeAPI(t)
	m := testModel(t, f, "5m")
	pollOnce(t, m)

	byCount := []string{"commons.wikimedia.org", "www.wikidata.org", "en.wikipedia.org", "de.wikipedia.org", "fr.wiktionary.org"}
	byDomain := []string{"commons.wikimedia.org", "de.wikipedia.org", "en.wikipedia.org", "fr.wiktionary.org", "www.wikidata.org"}
	// Recent rate (last 5 complete minutes): en 72 > commons 41 > wikidata 20 > de 3; fr has no series.
	byRate := []string{"en.wikipedia.org", "commons.wikimedia.org", "www.wikidata.org", "de.wikipedia.org", "fr.wiktionary.org"}
	rev := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }

	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"default rank", func() {}, byCount},
		{"domain", func() { m.setSort(sortDomain) }, byDomain},
		{"domain again reverses", func() { m.setSort(sortDomain) }, rev(byDomain)},
		{"count", func() { m.setSort(sortCount) }, byCount},
		{"S reverses count", m.reverseSort, rev(byCount)},
		{"edits/min", func() { m.setSort(sortRate) }, byRate},
		{"s cycles to rank", m.cycleSort, byCount},
		{"s cycles to domain", m.cycleSort, byDomain},
	}
	for _, st := range steps {
		st.do()
		s := m.snapshot()
		if got := domains(s.Rows); !slices.Equal(got, st.want) {
			t.Errorf("%s: rows %v, want %v", st.name, got, st.want)
		}
	}
	s := m.snapshot()
	for _, r := range s.Rows {
		if r.Domain == "en.wikipedia.org" {
			if r.Rank != 3 || r.Count != 200 || r.PerMin != 72 || len(r.Spark) != 15 {
				t.Errorf("en row = %+v", r)
			}
			if want := 200.0 / 1060; r.Share != want {
				t.Errorf("en share %v, want %v", r.Share, want)
			}
		}
		if r.Domain == "fr.wiktionary.org" && r.PerMin != -1 {
			t.Errorf("fr has no series, PerMin = %v, want -1", r.PerMin)
		}
	}
	if s.Total != 1060 || s.Wikis != 5 {
		t.Errorf("total %d wikis %d, want 1060 5", s.Total, s.Wikis)
	}
	// The last complete minute of the total series: 43+20+90+3.
	if want := 156.0 / 60; s.PerSec != want {
		t.Errorf("PerSec %v, want %v", s.PerSec, want)
	}
	if len(s.Types) != 4 || s.Types[0] != (named{"edit", 700}) {
		t.Errorf("types %v", s.Types)
	}
}

func TestModelFilter(t *testing.T) {
	f := newFakeAPI(t)
	m := testModel(t, f, "5m")
	pollOnce(t, m)
	tests := []struct {
		filter string
		want   []string
	}{
		{"WIKIPEDIA", []string{"en.wikipedia.org", "de.wikipedia.org"}},
		{" wik ", []string{"commons.wikimedia.org", "www.wikidata.org", "en.wikipedia.org", "de.wikipedia.org", "fr.wiktionary.org"}},
		{"nothing-like-this", []string{}},
		{"", []string{"commons.wikimedia.org", "www.wikidata.org", "en.wikipedia.org", "de.wikipedia.org", "fr.wiktionary.org"}},
	}
	for _, tt := range tests {
		m.setFilter(tt.filter)
		s := m.snapshot()
		if got := domains(s.Rows); !slices.Equal(got, tt.want) {
			t.Errorf("filter %q: %v, want %v", tt.filter, got, tt.want)
		}
		if s.Wikis != 5 {
			t.Errorf("filter %q: Wikis %d, want 5 (counted before the filter)", tt.filter, s.Wikis)
		}
	}
	m.setFilter("de.")
	if s := m.snapshot(); len(s.Rows) != 1 || s.Rows[0].Rank != 4 {
		t.Errorf("filtered row keeps its rank: %+v", s.Rows)
	}
}

func TestModelWindowCycle(t *testing.T) {
	f := newFakeAPI(t)
	m := testModel(t, f, "5m")
	pollOnce(t, m)
	want := []string{"15m", "1h", "24h", "all", "1m", "5m"}
	for _, w := range want {
		if got := m.cycleWindow(); got != w {
			t.Fatalf("cycleWindow = %s, want %s", got, w)
		}
		if s := m.snapshot(); s.Window != w || s.DataWindow == w && w != "5m" {
			t.Fatalf("before the poll: window %s data %s", s.Window, s.DataWindow)
		}
		pollOnce(t, m)
		s := m.snapshot()
		if s.DataWindow != w {
			t.Fatalf("after the poll: data window %s, want %s", s.DataWindow, w)
		}
		if w != "5m" && !slices.Contains(domains(s.Rows), "window-"+w+".example.org") {
			t.Errorf("window %s: rows %v lack the window's own domain", w, domains(s.Rows))
		}
		if w == "all" && s.PagesWindow != "24h" {
			t.Errorf("top pages for all use 24h, got %q", s.PagesWindow)
		}
	}
	if got := f.queried("/stats?"); !slices.Contains(got, "/stats?by=domain&window=all") || !slices.Contains(got, "/stats?by=domain&window=1m") {
		t.Errorf("queries %v", got)
	}
}

func TestModelErrorKeepsDataAndRecovers(t *testing.T) {
	f := newFakeAPI(t)
	m := testModel(t, f, "5m")
	if d := pollOnce(t, m); d != 10*time.Second {
		t.Fatalf("delay after success %s, want the refresh interval", d)
	}
	good := m.snapshot()
	if good.Err != nil || good.LastGood.IsZero() {
		t.Fatalf("first poll: err %v lastGood %v", good.Err, good.LastGood)
	}

	f.setDown(true)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if d := pollOnce(t, m); d != want {
			t.Errorf("failure %d: retry after %s, want %s", i+1, d, want)
		}
	}
	bad := m.snapshot()
	var ae *apiError
	if !errors.As(bad.Err, &ae) || ae.Status != 503 || ae.Code != "unavailable" || !strings.Contains(bad.Err.Error(), "redis unreachable") {
		t.Fatalf("error state: %v", bad.Err)
	}
	if !slices.Equal(domains(bad.Rows), domains(good.Rows)) || bad.Total != good.Total {
		t.Errorf("last data lost: %v", domains(bad.Rows))
	}
	if !bad.LastGood.Equal(good.LastGood) || bad.ErrAt.IsZero() || bad.Retry.IsZero() {
		t.Errorf("times: lastGood %v (was %v), errAt %v retry %v", bad.LastGood, good.LastGood, bad.ErrAt, bad.Retry)
	}
	if m.stats.PollErrors.Load() != 6 {
		t.Errorf("PollErrors = %d", m.stats.PollErrors.Load())
	}

	f.setDown(false)
	f.setCount("5m", "de.wikipedia.org", 9999)
	pollOnce(t, m)
	ok := m.snapshot()
	if ok.Err != nil || !ok.Retry.IsZero() {
		t.Errorf("after recovery: err %v retry %v", ok.Err, ok.Retry)
	}
	if ok.Rows[0].Domain != "de.wikipedia.org" || ok.Rows[0].Count != 9999 {
		t.Errorf("after recovery: first row %+v", ok.Rows[0])
	}
}

func TestModelTypesFallbackAndDetail(t *testing.T) {
	f := newFakeAPI(t)
	f.noTypes = true
	m := testModel(t, f, "all")
	m.selectDomain("en.wikipedia.org")
	pollOnce(t, m)
	s := m.snapshot()
	if len(s.Types) != 4 {
		t.Errorf("types from by=type: %v", s.Types)
	}
	if len(f.queried("/stats?by=type&window=all")) != 1 {
		t.Errorf("no by=type request: %v", f.queried("/stats?"))
	}
	d := s.Detail
	if d == nil || d.Domain != "en.wikipedia.org" || d.Window != "1h" || len(d.Series.Total) != 60 {
		t.Fatalf("detail %+v", d)
	}
	if d.Series.Total[59] != 1 || d.Series.Total[55] != 90 {
		t.Errorf("detail series tail %v", d.Series.Total[50:])
	}
	if len(d.Pages.Items) != 1 || d.Pages.Items[0].Title != "Main Page" || d.Pages.Window != "24h" {
		t.Errorf("detail pages %+v", d.Pages)
	}
	if len(d.Editors.Items) != 2 || d.Editors.UniqueEditors != 123 {
		t.Errorf("detail editors %+v", d.Editors)
	}
	m.selectDomain("")
	if m.snapshot().Detail != nil {
		t.Error("closing the detail keeps its data")
	}
}

// TestModelRunStreamAndFallback runs the model loop: with a stream the figures
// follow every push; without one, polling alone brings the data.
func TestModelRunStreamAndFallback(t *testing.T) {
	for _, stream := range []bool{true, false} {
		name := "polling"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.noStream = !stream
			m := testModel(t, f, "5m")
			m.stream = true
			m.refresh = time.Hour // only the first poll: later data must come from the stream
			snaps := make(chan snapshot, 64)
			m.addListener(func(s snapshot) {
				select {
				case snaps <- s:
				default:
				}
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { m.run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			if !stream {
				// A 404 on /stats/stream switches the model to polling only.
				waitSnap(t, snaps, func(s snapshot) bool {
					m.mu.Lock()
					defer m.mu.Unlock()
					return len(s.Rows) == 5 && !s.Live && m.unsupported
				})
				return
			}
			waitSnap(t, snaps, func(s snapshot) bool { return len(s.Rows) == 5 && s.Live })
			// The stream's first event (the counts at connection) must be in
			// before the change, or it could carry the change itself.
			if m.stats.StreamEvents.Load() < 1 { // counted before its snapshot is sent
				waitSnap(t, snaps, func(snapshot) bool { return m.stats.StreamEvents.Load() >= 1 })
			}
			f.setCount("5m", "fr.wiktionary.org", 5000)
			waitSnap(t, snaps, func(s snapshot) bool { return len(s.Rows) > 0 && s.Rows[0].Domain == "fr.wiktionary.org" })
			if m.stats.StreamEvents.Load() < 2 {
				t.Errorf("StreamEvents = %d", m.stats.StreamEvents.Load())
			}
		})
	}
}

func waitSnap(t *testing.T, ch <-chan snapshot, ok func(snapshot) bool) snapshot {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatal("the expected snapshot never came")
		}
	}
}

func TestDecodeError(t *testing.T) {
	err := decodeError(400, []byte(`{"error":{"status":400,"code":"bad_parameter","parameter":"window","message":"window must be one of 1m; got \"7m\""}}`))
	var ae *apiError
	if !errors.As(err, &ae) || ae.Parameter != "window" || err.Error() != `400 bad_parameter: window must be one of 1m; got "7m"` {
		t.Errorf("got %#v %q", ae, err)
	}
	if got := decodeError(502, []byte("<html>bad gateway</html>")).Error(); got != "502: Bad Gateway" {
		t.Errorf("html body: %q", got)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 60: 30 * time.Second} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}
