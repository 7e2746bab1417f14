package obs

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
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
