package obs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// testStats is a stage's counters.
type testStats struct {
	EventsIn atomic.Int64
}

func TestHealthServerServesHealthMetricsAndProfiles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var s testStats
	s.EventsIn.Store(7)
	done := make(chan error, 1)
	in := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "bridge", Name: "events_in_total", Help: "Events read."},
		func() float64 { return float64(s.EventsIn.Load()) })
	st := Stage{Component: "bridge", Stats: func() any { return &s }, Metrics: NewRegistry(in)}
	go func() {
		done <- HealthServer(ctx, addr, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	get := func(path string) string {
		for i := 0; i < 50; i++ {
			resp, err := http.Get("http://" + addr + path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s", path, resp.Status)
				}
				return string(b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: server did not answer", path)
		return ""
	}
	if b := get("/healthz"); !strings.Contains(b, `"component":"bridge"`) || !strings.Contains(b, `"status":"ok"`) {
		t.Errorf("healthz: %s", b)
	}
	if b := get("/readyz"); !strings.Contains(b, `"status":"ready"`) {
		t.Errorf("readyz of a stage without Ready: %s", b)
	}
	if b := get("/metrics"); !strings.Contains(b, "\nwikiflow_bridge_events_in_total 7\n") || !strings.Contains(b, "go_goroutines") {
		t.Errorf("metrics: %s", b)
	}
	if b := get("/debug/pprof/"); !strings.Contains(b, "goroutine") {
		t.Errorf("pprof index: %.200s", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// probe is a stage value whose health answers the test sets.
type probe struct {
	reason atomic.Value // string
	err    atomic.Value // error wrapped in a box
	block  bool
}

type errBox struct{ err error }

func (p *probe) Degraded() string {
	r, _ := p.reason.Load().(string)
	return r
}

func (p *probe) Ready(ctx context.Context) error {
	if p.block {
		<-ctx.Done()
		return ctx.Err()
	}
	b, _ := p.err.Load().(errBox)
	return b.err
}

// statsOnly implements Degrader on the stats value rather than on the stage.
type statsOnly struct{ testStats }

func (*statsOnly) Degraded() string { return "stuck at position 42" }

func answer(t *testing.T, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body)
	}
	return rec.Code, m
}

func TestHealthzReportsDegradedWithReason(t *testing.T) {
	p := &probe{}
	h := Handler(Stage{Component: "ingest", Value: p})
	if code, m := answer(t, h, "/healthz"); code != 200 || m["status"] != "ok" || m["reason"] != nil {
		t.Errorf("healthy stage: %d %v", code, m)
	}
	p.reason.Store(`position [{"offset":7}] failed 5 times: "event: error" frame`)
	code, m := answer(t, h, "/healthz")
	if code != 200 || m["status"] != "degraded" || m["reason"] != `position [{"offset":7}] failed 5 times: "event: error" frame` || m["component"] != "ingest" {
		t.Errorf("degraded stage: %d %v", code, m)
	}
	h = Handler(Stage{Component: "ingest", Stats: func() any { return &statsOnly{} }})
	if code, m := answer(t, h, "/healthz"); code != 200 || m["status"] != "degraded" || m["reason"] != "stuck at position 42" {
		t.Errorf("Degraded on the stats value: %d %v", code, m)
	}
}

func TestReadyzAnswers503WithTheMissingDependency(t *testing.T) {
	p := &probe{}
	h := Handler(Stage{Component: "aggregate", Value: p})
	if code, m := answer(t, h, "/readyz"); code != 200 || m["status"] != "ready" {
		t.Errorf("ready stage: %d %v", code, m)
	}
	p.err.Store(errBox{errors.New("redis 127.0.0.1:1: connection refused")})
	code, m := answer(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || m["status"] != "unready" || m["reason"] != "redis 127.0.0.1:1: connection refused" {
		t.Errorf("unready stage: %d %v", code, m)
	}
	// A degraded stage may be ready, an unready one is still alive.
	if code, m := answer(t, h, "/healthz"); code != 200 || m["status"] != "ok" {
		t.Errorf("healthz of an unready stage: %d %v", code, m)
	}
}

func TestReadyzTimesOutOnAHangingCheck(t *testing.T) {
	h := Handler(Stage{Component: "bridge", Value: &probe{block: true}, ReadyTimeout: 50 * time.Millisecond})
	start := time.Now()
	code, m := answer(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || m["status"] != "unready" || !strings.Contains(m["reason"].(string), "50ms") {
		t.Errorf("hanging check: %d %v", code, m)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("readyz took %s", d)
	}
}
