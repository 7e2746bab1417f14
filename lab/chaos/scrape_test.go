package chaos

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestScrapeReadsLargeValues checks that scrape reads the values the
// Prometheus client writes in exponent notation from 1e6 up.
func TestScrapeReadsLargeValues(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "# TYPE wikiflow_bridge_records_read_total counter\nwikiflow_bridge_records_read_total 1.234567e+06\nwikiflow_bridge_kafka_lag_records 42\n")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	m, err := scrape(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if m["wikiflow_bridge_records_read_total"] != 1234567 || m["wikiflow_bridge_kafka_lag_records"] != 42 {
		t.Errorf("scraped %v", m)
	}
}
