package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// stageServer serves a stage's health and metrics handler that demands the basic
// auth user:password when password is not empty.
func stageServer(t *testing.T, component, password string) *httptest.Server {
	t.Helper()
	var published atomic.Int64
	published.Store(42)
	reg := obs.NewRegistry(obs.Counter(component, "events_published_total", "Events published.", &published))
	h := obs.Handler(obs.Stage{Component: component, Metrics: reg})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); password != "" && (u != "user" || p != password) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestStageMetricsRedacted checks that the stages' metrics are repeated on
// /metrics, that credentials in a stage URL are used but shown as xxxxx in the
// wikiflow_stage_up label and in the log, and that a stage that is down or
// refuses the scrape is reported up 0.
func TestStageMetricsRedacted(t *testing.T) {
	const secret = "st4ge-Secret"
	f := newFixture(t)
	guarded := stageServer(t, "ingest", secret)
	open := stageServer(t, "bridge", "")
	withAuth := strings.Replace(guarded.URL, "http://", "http://user:"+secret+"@", 1) + "/metrics"
	wrongAuth := strings.Replace(guarded.URL, "http://", "http://other:wrong-"+secret+"@", 1) + "/metrics"
	var out syncBuffer
	s := newServerLog(t, f.base, &out, func(c *Config) {
		c.Addr = "127.0.0.1:0"
		c.StageMetrics = []string{withAuth, open.URL + "/metrics", wrongAuth, "http://127.0.0.1:1/metrics"}
	})
	base := startServer(t, s)
	status, body := fetch(t, base+"/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	page := string(body)
	checkNoSecret(t, "/metrics", page, secret)
	for _, want := range []string{
		`wikiflow_stage_up{url="` + strings.Replace(withAuth, secret, "xxxxx", 1) + `"} 1` + "\n",
		`wikiflow_stage_up{url="` + open.URL + `/metrics"} 1` + "\n",
		`wikiflow_stage_up{url="` + strings.Replace(wrongAuth, "wrong-"+secret, "xxxxx", 1) + `"} 0` + "\n",
		`wikiflow_stage_up{url="http://127.0.0.1:1/metrics"} 0` + "\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, stage := range []string{"ingest", "bridge"} {
		if !regexp.MustCompile(`(?m)^wikiflow_` + stage + `_events_published_total 42$`).MatchString(page) {
			t.Errorf("/metrics lacks the %s page", stage)
		}
	}
	// The stages' go_ and process_ families stay on their own pages: the API's
	// page has its own once.
	for _, family := range []string{"wikiflow_stage_up gauge", "wikiflow_ingest_events_published_total counter", "go_goroutines gauge", "process_cpu_seconds_total counter"} {
		if n := strings.Count(page, "# TYPE "+family+"\n"); n != 1 {
			t.Errorf("%d TYPE lines for %s, want 1", n, family)
		}
	}
	checkNoSecret(t, "the log", out.String(), secret)
	if !strings.Contains(out.String(), "stage metrics unavailable") {
		t.Errorf("the stage that is down is not logged:\n%s", out.String())
	}
}

// TestStagePagesLeftOutWhole checks that a page that is not a valid exposition,
// or has no wikiflow_ family, adds nothing and is reported up 0, and that two
// URLs sharing a label (they differ only in credentials) show 1 only when both
// answered.
func TestStagePagesLeftOutWhole(t *testing.T) {
	serve := func(page string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, page) }))
		t.Cleanup(srv.Close)
		return srv.URL + "/metrics"
	}
	broken := serve("# TYPE wikiflow_ingest_events_published_total counter\nwikiflow_ingest_events_published_total 4\nwikiflow_ingest_trunc{")
	foreign := serve("# TYPE node_load1 gauge\nnode_load1 0.5\n")
	guarded := stageServer(t, "bridge", "pw")
	right := strings.Replace(guarded.URL, "http://", "http://user:pw@", 1) + "/metrics"
	wrong := strings.Replace(guarded.URL, "http://", "http://user:wrong@", 1) + "/metrics"
	open := stageServer(t, "aggregate", "")
	p := newStagePages([]string{broken, foreign, right, wrong, open.URL + "/metrics"}, slog.New(slog.DiscardHandler))
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.up)
	mfs, err := prometheus.Gatherers{p, reg}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	page := b.String()
	shared := strings.Replace(right, ":pw@", ":xxxxx@", 1)
	for _, want := range []string{
		"wikiflow_aggregate_events_published_total 42\n",
		"wikiflow_bridge_events_published_total 42\n",
		`wikiflow_stage_up{url="` + broken + `"} 0` + "\n",
		`wikiflow_stage_up{url="` + foreign + `"} 0` + "\n",
		`wikiflow_stage_up{url="` + shared + `"} 0` + "\n",
		`wikiflow_stage_up{url="` + open.URL + `/metrics"} 1` + "\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("gathered page lacks %q:\n%s", want, page)
		}
	}
	for _, not := range []string{"wikiflow_ingest", "node_load1", "go_goroutines"} {
		if strings.Contains(page, not) {
			t.Errorf("gathered page has %s:\n%s", not, page)
		}
	}
}

// TestStageMetricsClash checks that two stage pages with the same series (two
// instances of a stage scraped under one name) leave a valid page: the series
// once, and the clash logged once.
func TestStageMetricsClash(t *testing.T) {
	f := newFixture(t)
	a, b := stageServer(t, "bridge", ""), stageServer(t, "bridge", "")
	var out syncBuffer
	s := newServerLog(t, f.base, &out, func(c *Config) {
		c.Addr = "127.0.0.1:0"
		c.StageMetrics = []string{a.URL + "/metrics", b.URL + "/metrics"}
	})
	base := startServer(t, s)
	var page string
	for range 2 {
		_, body := fetch(t, base+"/metrics")
		page = string(body)
	}
	if n := strings.Count(page, "\nwikiflow_bridge_events_published_total 42\n"); n != 1 {
		t.Errorf("%d samples of wikiflow_bridge_events_published_total, want 1:\n%s", n, page)
	}
	if n := strings.Count(out.String(), "metrics left out of /metrics"); n != 1 {
		t.Errorf("the clash is logged %d times, want once:\n%s", n, out.String())
	}
}
