package obs

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wikiflow/wikiflow/internal/obs/promtooltest"
)

type testStats struct {
	EventsIn   atomic.Int64 `help:"events read"`
	HTTPErrors atomic.Int64
	KafkaLag   atomic.Int64  `metric:"gauge" help:"records not yet read\\behind"`
	LastSeq    atomic.Uint64 `metric:"gauge" help:"two\nlines"`
	Scratch    atomic.Int64  `metric:"-"`
	hidden     atomic.Int64
	Name       string
}

func TestWriteMetricsTypesCountersAndGauges(t *testing.T) {
	var s testStats
	s.EventsIn.Store(42)
	s.HTTPErrors.Store(3)
	s.KafkaLag.Store(-5)
	s.LastSeq.Store(9)
	s.Scratch.Store(1)
	s.hidden.Store(9)
	var b bytes.Buffer
	WriteMetrics(&b, "ingest", &s)
	out := b.String()
	for _, want := range []string{
		"# HELP wikiflow_ingest_events_in_total events read\n# TYPE wikiflow_ingest_events_in_total counter\nwikiflow_ingest_events_in_total 42\n",
		"# HELP wikiflow_ingest_http_errors_total HTTPErrors\n# TYPE wikiflow_ingest_http_errors_total counter\nwikiflow_ingest_http_errors_total 3\n",
		"# HELP wikiflow_ingest_kafka_lag records not yet read\\\\behind\n# TYPE wikiflow_ingest_kafka_lag gauge\nwikiflow_ingest_kafka_lag -5\n",
		"# HELP wikiflow_ingest_last_seq two\\nlines\n# TYPE wikiflow_ingest_last_seq gauge\nwikiflow_ingest_last_seq 9\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"hidden", "name", "scratch"} {
		if strings.Contains(out, not) {
			t.Errorf("%s exported:\n%s", not, out)
		}
	}
	promtooltest.Check(t, "testStats", b.Bytes())
}

func TestNewLoggerRejectsBadValues(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, "loud", "text"); err == nil {
		t.Error("level loud accepted")
	}
	if _, err := NewLogger(&bytes.Buffer{}, "info", "xml"); err == nil {
		t.Error("format xml accepted")
	}
}
