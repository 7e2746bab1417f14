package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

func checkAsOf(t *testing.T, what string, got apitypes.Time, want time.Time) {
	t.Helper()
	if got.IsZero() {
		t.Fatalf("%s: as_of is null", what)
	}
	if ts := got.Time; !ts.Equal(want.Truncate(time.Millisecond)) {
		t.Errorf("%s: as_of %s, want %s", what, ts, want)
	}
}

func TestStatsFastPath(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	r := get(t, s, "/stats")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	got := decode[apitypes.Stats](t, r)
	equalCounts(t, "stats", got.Stats, countBy(f.events, func(e *event.Event) string { return e.Domain }))
	if got.Total != int64(len(f.events)) || got.Total != 2723 {
		t.Errorf("total %d, want %d", got.Total, len(f.events))
	}
	if got.Stats["commons.wikimedia.org"] != 1079 || got.Stats["www.wikidata.org"] != 313 {
		t.Errorf("commons %d, wikidata %d; want 1079, 313", got.Stats["commons.wikimedia.org"], got.Stats["www.wikidata.org"])
	}
	if got.Window != "all" || got.By != "domain" || got.Namespace != testNS {
		t.Errorf("window %q by %q namespace %q", got.Window, got.By, got.Namespace)
	}
	checkAsOf(t, "fast", got.AsOf, f.asOf)
	if got.FreshnessSeconds == nil || *got.FreshnessSeconds < 0 || *got.FreshnessSeconds > 600 {
		t.Errorf("freshness_seconds %v", got.FreshnessSeconds)
	}
	if got.UpdatedAt.IsZero() {
		t.Error("updated_at is null")
	}
	if got.BotShare != nil || got.Types != nil || got.EditsPerMinute != nil {
		t.Errorf("the fast path has extra fields: %s", r.body)
	}
	// The body is reused within the cache TTL: the second answer is identical.
	if r2 := get(t, s, "/stats"); string(r2.body) != string(r.body) && s.Stats().CacheHits.Load() == 0 {
		t.Errorf("no cache hit and a different body")
	}
}

func TestStatsWindows(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	for _, w := range []string{"1m", "5m", "15m", "1h", "24h", "all"} {
		t.Run(w, func(t *testing.T) {
			n := windowMinutes[w]
			evs := f.window(n)
			got := decode[apitypes.Stats](t, get(t, s, "/stats?window="+w))
			equalCounts(t, "stats", got.Stats, countBy(evs, func(e *event.Event) string { return e.Domain }))
			if got.Total != int64(len(evs)) {
				t.Errorf("total %d, want %d", got.Total, len(evs))
			}
			equalCounts(t, "types", got.Types, countBy(evs, func(e *event.Event) string { return e.Type }))
			bots := countBy(evs, func(e *event.Event) string {
				if e.Bot {
					return "bot"
				}
				return ""
			})["bot"]
			wantShare := float64(bots) / float64(len(evs))
			if got.BotShare == nil || math.Abs(*got.BotShare-wantShare) > 0.001 {
				t.Errorf("bot_share %v, want %.3f", got.BotShare, wantShare)
			}
			wantEPM := float64(len(f.window(5))) / 5
			if n > 0 {
				wantEPM = float64(len(evs)) / float64(n)
			}
			if got.EditsPerMinute == nil || math.Abs(*got.EditsPerMinute-wantEPM) > 0.001 {
				t.Errorf("edits_per_minute %v, want %.3f", got.EditsPerMinute, wantEPM)
			}
			if got.Window != w || got.Namespace != testNS {
				t.Errorf("window %q namespace %q", got.Window, got.Namespace)
			}
			checkAsOf(t, w, got.AsOf, f.asOf)
		})
	}
	// The fixture spreads events so that windows differ.
	if a, b := len(f.window(15)), len(f.window(60)); a == b {
		t.Errorf("fixture: 15m and 1h hold the same %d events", a)
	}
	if a, b := len(f.window(60)), len(f.window(1440)); a == b {
		t.Errorf("fixture: 1h and 24h hold the same %d events", a)
	}
	if a, b := len(f.window(1440)), len(f.events); a == b {
		t.Errorf("fixture: 24h and all hold the same %d events", a)
	}
}

func TestStatsFiltersAndGroupings(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	botKey := func(e *event.Event) string {
		if e.Bot {
			return "bot"
		}
		return "human"
	}
	keyOf := map[string]func(*event.Event) string{
		"domain":    func(e *event.Event) string { return e.Domain },
		"wiki":      func(e *event.Event) string { return e.Wiki },
		"type":      func(e *event.Event) string { return e.Type },
		"bot":       botKey,
		"namespace": func(e *event.Event) string { return strconv.Itoa(e.Namespace) },
		"editor":    func(e *event.Event) string { return e.EditorKind() },
	}
	cases := []struct {
		query  string
		window int64
		by     string
		match  func(*event.Event) bool
		top    int
		note   bool
	}{
		{"wiki=enwiki", 0, "domain", func(e *event.Event) bool { return e.Wiki == "enwiki" }, 0, false},
		{"domain=commons.wikimedia.org&by=type", 0, "type", func(e *event.Event) bool { return e.Domain == "commons.wikimedia.org" }, 0, false},
		{"type=edit&window=1h&by=wiki", 60, "wiki", func(e *event.Event) bool { return e.Type == "edit" }, 0, false},
		{"bot=true&by=wiki", 0, "wiki", func(e *event.Event) bool { return e.Bot }, 0, false},
		{"bot=false&by=type&window=24h", 1440, "type", func(e *event.Event) bool { return !e.Bot }, 0, false},
		{"by=bot&window=5m", 5, "bot", nil, 0, false},
		{"by=wiki&window=15m&type=categorize&bot=true", 15, "wiki", func(e *event.Event) bool { return e.Type == "categorize" && e.Bot }, 0, false},
		{"by=namespace", 0, "namespace", nil, 0, true},
		{"by=namespace&window=24h&wiki=enwiki", 1440, "namespace", nil, 0, true},
		{"by=editor&window=1h", 60, "editor", nil, 0, true},
		{"by=editor&bot=true", 0, "editor", nil, 0, true},
		{"by=wiki&top=3", 0, "wiki", nil, 3, false},
		{"top=1&window=5m", 5, "domain", nil, 1, false},
		{"domain=no.such.domain", 0, "domain", func(e *event.Event) bool { return false }, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			var evs []event.Event
			for _, e := range f.window(tc.window) {
				if tc.match == nil || tc.match(&e) {
					evs = append(evs, e)
				}
			}
			r := get(t, s, "/stats?"+tc.query)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			got := decode[apitypes.Stats](t, r)
			want := countBy(evs, keyOf[tc.by])
			if tc.top > 0 {
				top := map[string]int64{}
				for _, g := range topOf(want, tc.top) {
					top[g.key] = g.count
				}
				want = top
			}
			equalCounts(t, "stats", got.Stats, want)
			if got.Total != int64(len(evs)) {
				t.Errorf("total %d, want %d", got.Total, len(evs))
			}
			if got.By != tc.by {
				t.Errorf("by %q, want %q", got.By, tc.by)
			}
			if tc.note != (got.Note != "") {
				t.Errorf("note %q (want one: %v)", got.Note, tc.note)
			}
		})
	}
}

func TestTimeseries(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	cases := []struct {
		query string
		n     int64
		match func(*event.Event) bool
		by    func(*event.Event) string
		top   int
	}{
		{"", 60, nil, nil, 0},
		{"window=15m", 15, nil, nil, 0},
		{"window=5m&type=edit&by=domain&top=2", 5, func(e *event.Event) bool { return e.Type == "edit" }, func(e *event.Event) string { return e.Domain }, 2},
		{"window=1h&by=bot", 60, nil, func(e *event.Event) string { return map[bool]string{true: "bot", false: "human"}[e.Bot] }, 10},
		{"window=24h&wiki=enwiki", 1440, func(e *event.Event) bool { return e.Wiki == "enwiki" }, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			got := decode[apitypes.Timeseries](t, get(t, s, "/stats/timeseries?"+tc.query))
			if int64(len(got.Times)) != tc.n || int64(len(got.Total)) != tc.n || got.StepSeconds != 60 {
				t.Fatalf("%d times, %d totals, step %d; want %d, 60", len(got.Times), len(got.Total), got.StepSeconds, tc.n)
			}
			checkAsOf(t, "timeseries", got.AsOf, f.asOf)
			first := f.asOfMin - tc.n + 1
			wantTotal := make([]int64, tc.n)
			wantSeries := map[string][]int64{}
			sums := map[string]int64{}
			for _, e := range f.window(tc.n) {
				if tc.match != nil && !tc.match(&e) {
					continue
				}
				i := e.Time.Unix()/60 - first
				wantTotal[i]++
				if tc.by != nil {
					k := tc.by(&e)
					if wantSeries[k] == nil {
						wantSeries[k] = make([]int64, tc.n)
					}
					wantSeries[k][i]++
					sums[k]++
				}
			}
			for i := range got.Times {
				if ts := got.Times[i]; ts.Unix() != (first+int64(i))*60 || ts.Nanosecond() != 0 {
					t.Fatalf("times[%d] = %q, want minute %d", i, got.Times[i], first+int64(i))
				}
				if got.Total[i] != wantTotal[i] {
					t.Errorf("total[%d] (%s) = %d, want %d", i, got.Times[i], got.Total[i], wantTotal[i])
				}
			}
			if tc.by == nil {
				if got.Series != nil {
					t.Errorf("series present without by")
				}
				return
			}
			keep := topOf(sums, tc.top)
			if len(got.Series) != len(keep) {
				t.Errorf("%d series, want %d", len(got.Series), len(keep))
			}
			for _, g := range keep {
				row := got.Series[g.key]
				if fmt.Sprint(row) != fmt.Sprint(wantSeries[g.key]) {
					t.Errorf("series %q = %v, want %v", g.key, row, wantSeries[g.key])
				}
			}
		})
	}
	var nonzero int
	for _, v := range decode[apitypes.Timeseries](t, get(t, s, "/stats/timeseries?window=24h")).Total {
		if v > 0 {
			nonzero++
		}
	}
	if nonzero < 4 {
		t.Errorf("24h series has %d non-zero minutes; the fixture spans more", nonzero)
	}
}

// topItem is an entry of either top list, the name being a title or a user.
type topItem struct {
	Domain, Name string
	Count        int64
}

// topList is a top list of either kind; UniqueEditors is nil when the body has
// no unique_editors.
type topList struct {
	AsOf          apitypes.Time
	Items         []topItem
	UniqueEditors *int64
}

// decodeTop decodes the body of /stats/top/pages or /stats/top/editors (kind
// "pages" or "editors") into its declared type, then into a topList.
func decodeTop(t *testing.T, kind string, r response) topList {
	t.Helper()
	if kind == "pages" {
		b := decode[apitypes.TopPages](t, r)
		l := topList{AsOf: b.AsOf}
		for _, it := range b.Items {
			l.Items = append(l.Items, topItem{it.Domain, it.Title, it.Count})
		}
		return l
	}
	b := decode[apitypes.TopEditors](t, r)
	l := topList{AsOf: b.AsOf}
	for _, it := range b.Items {
		l.Items = append(l.Items, topItem{it.Domain, it.User, it.Count})
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(r.body, &fields) == nil && fields["unique_editors"] != nil {
		l.UniqueEditors = &b.UniqueEditors
	}
	return l
}

func TestTopPagesAndEditors(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	cases := []struct {
		query string
		n     int64 // minutes; 1440 uses 24 hour buckets
		match func(*event.Event) bool
		top   int
	}{
		{"", 60, nil, 10},
		{"window=5m&top=25", 5, nil, 25},
		{"window=1m&top=1000", 1, nil, 1000},
		{"window=24h&top=7", 1440, nil, 7},
		{"window=1h&domain=commons.wikimedia.org&top=5", 60, func(e *event.Event) bool { return e.Domain == "commons.wikimedia.org" }, 5},
		{"window=24h&wiki=enwiki", 1440, func(e *event.Event) bool { return e.Wiki == "enwiki" }, 10},
		{"wiki=nosuchwiki", 60, func(e *event.Event) bool { return false }, 10},
	}
	for _, kind := range []string{"pages", "editors"} {
		for _, tc := range cases {
			t.Run(kind+"?"+tc.query, func(t *testing.T) {
				var evs []event.Event
				if tc.n == 1440 {
					evs = f.hourWindow(24)
				} else {
					evs = f.window(tc.n)
				}
				users := map[string]bool{}
				counts := map[string]int64{}
				for _, e := range evs {
					if e.User != "" {
						users[e.User] = true
					}
					if tc.match != nil && !tc.match(&e) {
						continue
					}
					name := e.Title
					if kind == "editors" {
						name = e.User
					}
					if name != "" {
						counts[e.Domain+"|"+name]++
					}
				}
				r := get(t, s, "/stats/top/"+kind+"?"+tc.query)
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				got := decodeTop(t, kind, r)
				checkAsOf(t, kind, got.AsOf, f.asOf)
				// Expected order: count, then the member "domain|name".
				want := topOf(counts, tc.top)
				if len(got.Items) != len(want) {
					t.Fatalf("%d items, want %d", len(got.Items), len(want))
				}
				for i, w := range want {
					if g := got.Items[i].Domain + "|" + got.Items[i].Name; g != w.key || got.Items[i].Count != w.count {
						t.Errorf("item %d = %s ×%d, want %s ×%d", i, g, got.Items[i].Count, w.key, w.count)
					}
				}
				if kind == "editors" {
					if got.UniqueEditors == nil {
						t.Fatal("no unique_editors")
					}
					exact := float64(len(users))
					if math.Abs(float64(*got.UniqueEditors)-exact) > 0.02*exact+1 {
						t.Errorf("unique_editors %d, exact %d", *got.UniqueEditors, len(users))
					}
				} else if got.UniqueEditors != nil {
					t.Errorf("pages carry unique_editors")
				}
			})
		}
	}
	// No temporary union key is left behind.
	keys, err := f.rdb.Keys(context.Background(), "{"+f.base+"}:tmp:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("temporary keys left: %v %v", keys, err)
	}
}

func TestPointerSwitch(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	got := decode[apitypes.Stats](t, get(t, s, "/stats?window=all"))
	if got.Namespace != testNS || got.Stats["decoy.example.org"] != 0 {
		t.Fatalf("namespace %q, decoy %d", got.Namespace, got.Stats["decoy.example.org"])
	}
	k := projection.New(f.base, testNS)
	if err := f.rdb.Set(context.Background(), k.Pointer(), projection.DefaultNamespace, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got = decode[apitypes.Stats](t, get(t, s, "/stats?window=all"))
	if got.Namespace != projection.DefaultNamespace || got.Total != 7 || got.Stats["decoy.example.org"] != 7 {
		t.Errorf("after the switch: namespace %q total %d stats %v", got.Namespace, got.Total, got.Stats)
	}
	checkAsOf(t, "decoy", got.AsOf, f.asOf.Add(time.Hour))
	// Without a pointer, the default namespace is read.
	f.rdb.Del(context.Background(), k.Pointer())
	got = decode[apitypes.Stats](t, get(t, s, "/stats?by=wiki"))
	if got.Namespace != projection.DefaultNamespace || got.Stats["decoywiki"] != 7 {
		t.Errorf("without a pointer: namespace %q stats %v", got.Namespace, got.Stats)
	}
}

func TestEmptyProjection(t *testing.T) {
	rdb := testenv.Redis(t)
	s := newServer(t, testenv.Prefix(t, rdb), nil)
	for _, target := range []string{"/stats", "/stats?window=5m", "/stats/timeseries", "/stats/top/pages", "/stats/top/editors"} {
		r := get(t, s, target)
		if r.status != 200 {
			t.Errorf("%s: status %d: %s", target, r.status, r.body)
		}
		if !strings.Contains(string(r.body), `"as_of":null`) {
			t.Errorf("%s: as_of not null: %s", target, r.body)
		}
	}
	got := decode[apitypes.Stats](t, get(t, s, "/stats"))
	if got.Total != 0 || len(got.Stats) != 0 || got.FreshnessSeconds != nil {
		t.Errorf("empty projection: %+v", got)
	}
}

func TestBadParameters(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	cases := []struct{ target, param string }{
		{"/stats?window=7m", "window"},
		{"/stats?window=", "window"},
		{"/stats?wiki=", "wiki"},
		{"/stats?wiki=en|wiki", "wiki"},
		{"/stats?domain=a%20b", "domain"},
		{"/stats?domain=" + strings.Repeat("x", 300), "domain"},
		{"/stats?type=edits", "type"},
		{"/stats?bot=yes", "bot"},
		{"/stats?by=user", "by"},
		{"/stats?top=0", "top"},
		{"/stats?top=1001", "top"},
		{"/stats?top=ten", "top"},
		{"/stats?interval=5s", "interval"},
		{"/stats?window=1m&window=5m", "window"},
		{"/stats?limit=3", "limit"},
		{"/stats/timeseries?window=all", "window"},
		{"/stats/timeseries?by=namespace", "by"},
		{"/stats/timeseries?top=-1&by=wiki", "top"},
		{"/stats/top/pages?window=all", "window"},
		{"/stats/top/pages?type=edit", "type"},
		{"/stats/top/editors?top=5000", "top"},
		{"/stats/top/editors?by=domain", "by"},
		{"/stats/stream?interval=0s", "interval"},
		{"/stats/stream?interval=61s", "interval"},
		{"/stats/stream?interval=soon", "interval"},
		{"/stats/stream?window=2h", "window"},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			r := get(t, s, tc.target)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			e := decode[apitypes.Error](t, r)
			if e.Error.Status != 400 || e.Error.Code != "bad_parameter" || e.Error.Parameter != tc.param || !strings.Contains(e.Error.Message, tc.param) {
				t.Errorf("error %+v, want parameter %q", e.Error, tc.param)
			}
		})
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	r := get(t, s, "/nope")
	e := decode[apitypes.Error](t, r)
	if r.status != 404 || e.Error.Code != "not_found" || e.Error.Status != 404 {
		t.Errorf("GET /nope: %d %s", r.status, r.body)
	}
	r = do(t, s, http.MethodPost, "/stats")
	e = decode[apitypes.Error](t, r)
	if r.status != 405 || e.Error.Code != "method_not_allowed" || r.header.Get("Allow") == "" {
		t.Errorf("POST /stats: %d %s allow=%q", r.status, r.body, r.header.Get("Allow"))
	}
	if r := do(t, s, http.MethodHead, "/stats"); r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD /stats: %d, %d bytes", r.status, len(r.body))
	}
}

func TestETag(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.CacheTTL = time.Second })
	for _, target := range []string{"/stats", "/stats/top/pages", "/openapi.json", "/healthz"} {
		r := get(t, s, target)
		tag := r.header.Get("ETag")
		if r.status != 200 || tag == "" {
			t.Fatalf("%s: status %d etag %q", target, r.status, tag)
		}
		r2 := get(t, s, target, "If-None-Match", tag)
		if r2.status != 304 || len(r2.body) != 0 || r2.header.Get("ETag") != tag {
			t.Errorf("%s with If-None-Match: %d, %d bytes, etag %q", target, r2.status, len(r2.body), r2.header.Get("ETag"))
		}
		r3 := get(t, s, target, "If-None-Match", `"other"`)
		if r3.status != 200 || len(r3.body) == 0 {
			t.Errorf("%s with another tag: %d", target, r3.status)
		}
	}
}

func TestReadyz(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	r := get(t, s, "/readyz")
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"ready"`) || !strings.Contains(string(r.body), `"redis":"ok"`) {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	if r := get(t, s, "/healthz"); r.status != 200 || string(r.body) != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}

	// A projection not updated for longer than max-staleness is not ready.
	stale := newServer(t, f.base, func(c *Config) { c.MaxStaleness = time.Millisecond })
	time.Sleep(5 * time.Millisecond)
	r = get(t, stale, "/readyz")
	if r.status != 503 || !strings.Contains(string(r.body), "max-staleness") {
		t.Errorf("stale readyz: %d %s", r.status, r.body)
	}

	// Redis unreachable: a closed port answers 503 quickly, on every route that reads it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dead := newServer(t, f.base, func(c *Config) { c.Redis.URL = "redis://127.0.0.1:" + strconv.Itoa(port) + "/0" })
	for _, target := range []string{"/readyz", "/stats", "/stats?window=5m", "/stats/timeseries", "/stats/top/editors"} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		start := time.Now()
		resp, err := dead.App().Test(req, 3000) // fails when no answer comes within 3 s
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("%s with Redis down: status %d", target, resp.StatusCode)
		}
		t.Logf("%s with Redis down: 503 in %v", target, time.Since(start).Round(time.Millisecond))
	}
	e := decode[apitypes.Error](t, get(t, dead, "/stats?by=wiki"))
	if e.Error.Code != "unavailable" || e.Error.Status != 503 {
		t.Errorf("error body %+v", e.Error)
	}
	if dead.Stats().RedisFailures.Load() == 0 {
		t.Error("Redis failures not counted")
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	get(t, s, "/stats")
	get(t, s, "/stats?window=bad")
	get(t, s, "/missing")
	r := get(t, s, "/metrics")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	body := string(r.body)
	for _, want := range []string{
		`wikiflow_api_requests_total{route="/stats",status="200"} 1`,
		`wikiflow_api_requests_total{route="/stats",status="400"} 1`,
		`wikiflow_api_requests_total{route="other",status="404"} 1`,
		`wikiflow_api_request_duration_seconds_bucket{route="/stats",le="+Inf"} 2`,
		`wikiflow_api_request_duration_seconds_count{route="/stats"} 2`,
		"# TYPE wikiflow_api_request_duration_seconds histogram",
		`wikiflow_api_request_duration_seconds_count{route="/stats/timeseries"} 0`,
		"# TYPE wikiflow_api_redis_errors_total counter\nwikiflow_api_redis_errors_total 0\n",
		"# TYPE wikiflow_api_stats_stream_clients gauge\nwikiflow_api_stats_stream_clients 0\n",
		"# TYPE wikiflow_api_events_clients gauge\nwikiflow_api_events_clients 0\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_resident_memory_bytes gauge\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestStream(t *testing.T) {
	f := newFixture(t)
	cfg := func(c *Config) { c.Addr = "127.0.0.1:0" }
	s := newServer(t, f.base, cfg)
	s.keepAlive = 100 * time.Millisecond // so that the departure is noticed quickly
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer stopRun(t, cancel, done, "after cancel")
	var addr net.Addr
	for i := 0; i < 200 && addr == nil; i++ {
		time.Sleep(10 * time.Millisecond)
		addr = s.Addr()
	}
	if addr == nil {
		t.Fatal("server did not listen")
	}
	base := "http://" + addr.String()

	resp, err := http.Get(base + "/stats/stream?window=5m&by=type&interval=1s")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	frame := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ": ")
		frame[k] = v
	}
	resp.Body.Close()
	if frame["event"] != "stats" || frame["id"] != strconv.FormatInt(f.asOf.UnixMilli(), 10) {
		t.Errorf("frame %v", frame)
	}
	var got apitypes.Stats
	if err := json.Unmarshal([]byte(frame["data"]), &got); err != nil {
		t.Fatalf("data %q: %v", frame["data"], err)
	}
	equalCounts(t, "stream stats", got.Stats, countBy(f.window(5), func(e *event.Event) string { return e.Type }))
	d := loadDoc(t)
	schema, err := d.responseSchema("/stats/stream", 200, "text/event-stream")
	if err != nil {
		t.Fatal(err)
	}
	// The event as an SSE client sees it, against the documented event schema.
	ev := map[string]any{"event": frame["event"], "id": frame["id"], "data": frame["data"]}
	for _, e := range d.validate(schema, ev, "$") {
		t.Errorf("stream event: %s", e)
	}

	// The same server answers plain requests too, and a bad stream parameter is a 400.
	if r, err := http.Get(base + "/stats/stream?interval=" + url.QueryEscape("2 minutes")); err != nil || r.StatusCode != 400 {
		t.Errorf("bad interval: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	// The client went away: the stream ends.
	for i := 0; i < 300 && s.Stats().StreamClients.Load() != 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if n := s.Stats().StreamClients.Load(); n != 0 {
		t.Errorf("%d stream clients still counted after the client left", n)
	}
}

func TestStreamEndsOnShutdown(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0" })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for i := 0; i < 200 && s.Addr() == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + s.Addr().String() + "/stats/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "event: stats\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	stopRun(t, cancel, done, "with a stream open")
}
