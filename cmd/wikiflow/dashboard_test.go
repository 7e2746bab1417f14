package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/api"
	"github.com/wikiflow/wikiflow/bridge"
	"github.com/wikiflow/wikiflow/ingest"
	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

// dashboardFile is the Grafana dashboard docs/ ships.
var dashboardFile = filepath.Join("..", "..", "docs", "grafana-dashboard.json")

// TestDashboardNamesOnlyServedMetrics parses the Grafana dashboard and checks
// that every PromQL expression in it names only series the stages' /metrics
// pages serve, scraped here from each stage's handler.
func TestDashboardNamesOnlyServedMetrics(t *testing.T) {
	series, _ := servedMetrics(t)
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string           `json:"title"`
		UID    string           `json:"uid"`
		Panels []map[string]any `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboardFile)
	}
	used := map[string]bool{}
	var all []string
	for _, p := range d.Panels {
		exprs := panelExprs(p)
		all = append(all, exprs...)
		if p["type"] != "row" && len(exprs) == 0 {
			t.Errorf("panel %q has no PromQL expression", p["title"])
		}
		for _, e := range exprs {
			names, err := promqlMetrics(e)
			if err != nil || len(names) == 0 {
				t.Errorf("panel %q: %q: names %v, %v", p["title"], e, names, err)
			}
			for _, n := range names {
				used[n] = true
				if !series[n] {
					t.Errorf("panel %q: %s is on no stage's /metrics (in %q)", p["title"], n, e)
				}
			}
		}
	}
	checkPromQL(t, all)
	// The dashboard shows each stage and the processes.
	for _, prefix := range []string{"wikiflow_ingest_", "wikiflow_bridge_", "wikiflow_aggregate_", "wikiflow_api_request_duration_seconds_bucket", "process_", "go_gc_"} {
		if !slices.ContainsFunc(keys(used), func(n string) bool { return strings.HasPrefix(n, prefix) }) {
			t.Errorf("the dashboard shows no %s… metric", prefix)
		}
	}
}

// TestDocsNameOnlyServedMetrics checks that every wikiflow_ metric README.md,
// BENCHMARKS.md and docs/ name is served by a stage.
func TestDocsNameOnlyServedMetrics(t *testing.T) {
	series, families := servedMetrics(t)
	docs, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	docs = append(docs, filepath.Join("..", "..", "README.md"), filepath.Join("..", "..", "BENCHMARKS.md"))
	name := regexp.MustCompile(`\bwikiflow_[a-z0-9_]*[a-z0-9]`)
	found := 0
	for _, f := range docs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			found++
			if !series[n] && !families[n] {
				t.Errorf("%s names %s, which no stage serves", filepath.Base(f), n)
			}
		}
	}
	if found == 0 {
		t.Error("the docs name no metric")
	}
}

// servedMetrics scrapes the /metrics pages of ingest, bridge, aggregate and the
// API and returns the series names a query can use (a histogram's are
// <name>_bucket, _sum and _count) and the metric families.
func servedMetrics(t *testing.T) (series, families map[string]bool) {
	t.Helper()
	in, err := ingest.New(ingest.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	br, err := bridge.New(bridge.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := aggregate.New(aggregate.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.DefaultConfig()
	cfg.StageMetrics = []string{"http://127.0.0.1:1/metrics"}
	srv, err := api.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pages := map[string][]byte{}
	for name, cs := range map[string][]prometheus.Collector{"ingest": in.Collectors(), "bridge": br.Collectors(), "aggregate": ag.Collectors()} {
		rec := httptest.NewRecorder()
		obs.Handler(obs.Stage{Component: name, Metrics: obs.NewRegistry(cs...)}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		pages[name] = rec.Body.Bytes()
	}
	// wikiflow_api_requests_total has a series once a request was answered.
	for _, path := range []string{"/openapi.json", "/metrics"} {
		resp, err := srv.App().Test(httptest.NewRequest(http.MethodGet, path, nil), 5000)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		pages["api"] = b.Bytes()
	}
	series, families = map[string]bool{}, map[string]bool{}
	for name, page := range pages {
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader(page))
		if err != nil {
			t.Fatalf("%s /metrics: %v", name, err)
		}
		for n, mf := range mfs {
			families[n] = true
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				series[n+"_bucket"], series[n+"_sum"], series[n+"_count"] = true, true, true
			case dto.MetricType_SUMMARY:
				series[n], series[n+"_sum"], series[n+"_count"] = true, true, true
			default:
				series[n] = true
			}
		}
	}
	return series, families
}

// panelExprs returns the PromQL expressions of a panel's targets, and of the
// panels a collapsed row holds.
func panelExprs(p map[string]any) []string {
	var out []string
	if ts, ok := p["targets"].([]any); ok {
		for _, x := range ts {
			if tm, ok := x.(map[string]any); ok {
				if e, ok := tm["expr"].(string); ok && e != "" {
					out = append(out, e)
				}
			}
		}
	}
	if ps, ok := p["panels"].([]any); ok {
		for _, x := range ps {
			if pm, ok := x.(map[string]any); ok {
				out = append(out, panelExprs(pm)...)
			}
		}
	}
	return out
}

// grafanaVariable matches the Grafana variables of an expression.
var grafanaVariable = regexp.MustCompile(`\$(\{[^}]*\}|\w+)`)

// checkPromQL has promtool parse every expression (Grafana's variables
// replaced by 5m), as recording rules: Prometheus's own parser must accept
// them all.
func checkPromQL(t *testing.T, exprs []string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		var q bytes.Buffer
		enc := json.NewEncoder(&q)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(grafanaVariable.ReplaceAllString(e, "5m")); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      - record: dashboard:expr_%d\n        expr: %s", i, q.Bytes())
	}
	rules := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(rules, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtooltest.Path(t), "check", "rules", rules).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules on the dashboard's expressions: %v\n%s\n--- the rules:\n%s", err, out, b.Bytes())
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
