package api

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// stageCounters stands for a stage's Stats on its metrics page.
type stageCounters struct {
	Published atomic.Int64 `help:"events published"`
}

// stageServer serves a stage's health and metrics handler that demands the basic
// auth user:password when password is not empty.
func stageServer(t *testing.T, component, password string) *httptest.Server {
	t.Helper()
	c := &stageCounters{}
	c.Published.Store(42)
	h := obs.Handler(obs.Stage{Component: component, Stats: func() any { return c }})
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

// TestStageMetricsRedacted checks that the stages' pages are appended to
// /metrics, that credentials in a stage URL are used but shown as xxxxx in the
// wikiflow_stage_up label and in the log, and that a stage that is down or
// refuses the scrape is reported up 0.
func TestStageMetricsRedacted(t *testing.T) {
	const secret = "st4ge-Secret"
	f := newFixture(t)
	guarded := stageServer(t, "ingest", secret)
	open := stageServer(t, "bridge", "")
	withAuth := strings.Replace(guarded.URL, "http://", "http://user:"+secret+"@", 1) + "/metrics"
	wrongAuth := strings.Replace(guarded.URL, "http://", "http://user:wrong-"+secret+"@", 1) + "/metrics"
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
		if !regexp.MustCompile(`(?m)^wikiflow_` + stage + `_published(_total)? 42$`).MatchString(page) {
			t.Errorf("/metrics lacks the %s page", stage)
		}
	}
	if n := strings.Count(page, "# TYPE wikiflow_stage_up gauge"); n != 1 {
		t.Errorf("%d TYPE lines for wikiflow_stage_up, want 1", n)
	}
	checkNoSecret(t, "the log", out.String(), secret)
	if !strings.Contains(out.String(), "stage metrics unavailable") {
		t.Errorf("the stage that is down is not logged:\n%s", out.String())
	}
}
