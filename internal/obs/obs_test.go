package obs

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

func TestRegistryServesTheGoAndProcessCollectorsAndPassesPromtool(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "test", Name: "events_read_total", Help: "Events read."})
	c.Add(42)
	rec := httptest.NewRecorder()
	MetricsHandler(NewRegistry(c)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	page, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"# HELP wikiflow_test_events_read_total Events read.\n# TYPE wikiflow_test_events_read_total counter\nwikiflow_test_events_read_total 42\n",
		"# TYPE go_goroutines gauge\n",
		"# TYPE go_gc_duration_seconds summary\n",
		"# TYPE process_resident_memory_bytes gauge\n",
		"# TYPE process_cpu_seconds_total counter\n",
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtooltest.Check(t, "NewRegistry", page)
}

func TestRegistriesAreIndependent(t *testing.T) {
	opts := prometheus.GaugeOpts{Namespace: Namespace, Name: "same_gauge", Help: "A gauge."}
	NewRegistry(prometheus.NewGauge(opts))
	// The same metric in a second registry must not collide with the first.
	NewRegistry(prometheus.NewGauge(opts))
}

func TestNewLoggerRejectsBadValues(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, "loud", "text"); err == nil {
		t.Error("level loud accepted")
	}
	if _, err := NewLogger(&bytes.Buffer{}, "info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
}
