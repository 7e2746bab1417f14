package obs

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the first word of every wikiflow metric name:
// wikiflow_<component>_<name>.
const Namespace = "wikiflow"

// NewRegistry returns a registry of its own (never the global default, so that
// every process and test keeps its metrics apart) holding the standard Go
// runtime (go_*) and process (process_*) collectors and cs. It panics when
// two collectors describe the same metric, a programming error.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(cs...)
	return reg
}

// MetricsHandler serves g in the Prometheus exposition format the scraper
// asks for (text 0.0.4 by default). A collector that fails leaves its metrics
// out, the others are still served.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Counter returns the counter wikiflow_<subsystem>_<name> (name ends in
// _total) whose value is read from v at each scrape.
func Counter(subsystem, name, help string, v *atomic.Int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help},
		func() float64 { return float64(v.Load()) })
}

// Gauge returns the gauge wikiflow_<subsystem>_<name> whose value read returns
// at each scrape.
func Gauge(subsystem, name, help string, read func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help}, read)
}

// Seconds returns a reader, for Gauge, of v, a count of unit (a millisecond,
// a nanosecond), in seconds.
func Seconds(v *atomic.Int64, unit time.Duration) func() float64 {
	per := float64(time.Second / unit)
	return func() float64 { return float64(v.Load()) / per }
}
