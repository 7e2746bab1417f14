package obs

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type testStats struct {
	EventsIn   atomic.Int64 `help:"events read"`
	HTTPErrors atomic.Int64
	hidden     atomic.Int64
	Name       string
}

func TestWriteMetrics(t *testing.T) {
	var s testStats
	s.EventsIn.Store(42)
	s.HTTPErrors.Store(3)
	s.hidden.Store(9)
	var b bytes.Buffer
	WriteMetrics(&b, "ingest", &s)
	out := b.String()
	for _, want := range []string{
		"# HELP wikiflow_ingest_events_in events read\n",
		"wikiflow_ingest_events_in 42\n",
		"wikiflow_ingest_http_errors 3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") || strings.Contains(out, "name") {
		t.Errorf("unexported or non-counter fields exported:\n%s", out)
	}
}

func TestNewLoggerRejectsBadValues(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, "loud", "text"); err == nil {
		t.Error("level loud accepted")
	}
	if _, err := NewLogger(&bytes.Buffer{}, "info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
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
	go func() {
		done <- HealthServer(ctx, addr, "bridge", func() any { return &s }, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	if b := get("/healthz"); !strings.Contains(b, `"component":"bridge"`) {
		t.Errorf("healthz: %s", b)
	}
	if b := get("/metrics"); !strings.Contains(b, "wikiflow_bridge_events_in 7") {
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
