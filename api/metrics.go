package api

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// Stats counts what the API did. Every field is safe for concurrent use.
type Stats struct {
	// RequestsServed counts HTTP requests answered.
	RequestsServed atomic.Int64
	// RedisFailures counts failed Redis calls.
	RedisFailures atomic.Int64
	// Unavailable counts 503 answers.
	Unavailable atomic.Int64
	// InternalErrors counts 500 answers.
	InternalErrors atomic.Int64
	// BadCounters counts counter values in Redis that were not integers (skipped).
	BadCounters atomic.Int64
	// CacheHits counts parameterless /stats answers served from the body cache.
	CacheHits atomic.Int64
	// StreamClients is the number of /stats/stream clients connected now.
	StreamClients atomic.Int64
	// StreamFeeds is the number of distinct parameter sets /stats/stream reads now.
	StreamFeeds atomic.Int64
	// StreamReads counts the Redis reads made for /stats/stream.
	StreamReads atomic.Int64
	// StreamRefused counts /stats/stream clients refused at the client limit.
	StreamRefused atomic.Int64
	// StreamEvents counts events sent on /stats/stream.
	StreamEvents atomic.Int64
}

// subsystem is the second word of the API's metric names: wikiflow_api_….
const subsystem = "api"

// latencyBuckets are the upper bounds (seconds) of the request latency histogram.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// otherRoute labels requests that matched no route.
const otherRoute = "other"

// httpMetrics holds the request metrics, labelled by route.
type httpMetrics struct {
	requests *prometheus.CounterVec   // by route and status
	duration *prometheus.HistogramVec // by route
}

// newHTTPMetrics returns the request metrics with a histogram for each route
// (requests that matched none count as otherRoute), shown before any request.
func newHTTPMetrics(routes []string) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: obs.Namespace, Subsystem: subsystem, Name: "requests_total",
			Help: "HTTP requests answered, by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: obs.Namespace, Subsystem: subsystem, Name: "request_duration_seconds",
			Help:    "Time to answer a request, by route (for /stats/stream: until the stream starts).",
			Buckets: latencyBuckets,
		}, []string{"route"}),
	}
	for _, r := range append(routes, otherRoute) {
		h.duration.WithLabelValues(r)
	}
	return h
}

func (h *httpMetrics) observe(route string, code int, d time.Duration) {
	h.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	h.duration.WithLabelValues(route).Observe(d.Seconds())
}

// collectors returns the API's metrics: the request counter and histogram and
// the counters of Stats, read when scraped.
func (s *Server) collectors() []prometheus.Collector {
	st := &s.stats
	c := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return obs.Counter(subsystem, name, help, v)
	}
	g := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return obs.Gauge(subsystem, name, help, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		s.metrics.requests, s.metrics.duration,
		c("redis_errors_total", "Failed Redis calls.", &st.RedisFailures),
		c("unavailable_responses_total", "Requests answered 503 (Redis unavailable or too slow).", &st.Unavailable),
		c("internal_error_responses_total", "Requests answered 500.", &st.InternalErrors),
		c("invalid_projection_values_total", "Values in the Redis projection that were not integers (skipped).", &st.BadCounters),
		c("stats_cache_hits_total", "Parameterless /stats answers served from the body cache.", &st.CacheHits),
		g("stats_stream_clients", "/stats/stream clients connected now.", &st.StreamClients),
		g("stats_stream_feeds", "/stats/stream parameter sets read now (one Redis read per interval each).", &st.StreamFeeds),
		c("stats_stream_redis_reads_total", "Redis reads made for /stats/stream, each shared by the clients of one parameter set.", &st.StreamReads),
		c("stats_stream_refused_total", "/stats/stream clients refused at the client limit (503).", &st.StreamRefused),
		c("stats_stream_events_sent_total", "Events sent on /stats/stream.", &st.StreamEvents),
	}
}

// measure is the middleware recording request counts and latency.
func (s *Server) measure(c *fiber.Ctx) error {
	start := time.Now()
	own := c.Route()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			s.log.Error("write error response", "err", herr)
		}
	}
	route := otherRoute
	// A request no route matched is left on this middleware's route (path "/"),
	// which must not count as the page's.
	if r := c.Route(); r != nil && r != own {
		if label, ok := s.known[r.Path]; ok {
			route = label
		}
	}
	s.stats.RequestsServed.Add(1)
	s.metrics.observe(route, c.Response().StatusCode(), time.Since(start))
	return nil
}

// Metrics returns what GET /metrics serves: the API's registry (its own
// metrics, the Go runtime and process ones) and, with Config.StageMetrics, the
// stages' wikiflow_ families with wikiflow_stage_up.
func (s *Server) Metrics() prometheus.Gatherer {
	if s.stages == nil {
		return s.registry
	}
	// The stages are fetched first, so that wikiflow_stage_up, in the API's
	// registry, shows this scrape's outcome.
	return prometheus.Gatherers{s.stages, s.registry}
}

// handleMetrics serves GET /metrics in the Prometheus text format.
func (s *Server) handleMetrics(c *fiber.Ctx) error {
	mfs, err := s.Metrics().Gather()
	s.reportGather(err)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.FmtText)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode metric family %s: %w", mf.GetName(), err)
		}
	}
	c.Set(fiber.HeaderContentType, string(expfmt.FmtText))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(b.Bytes())
}

// reportGather logs a problem of the gathering (a stage family that clashes
// with another: two stages with the same metric, or a different type or help),
// once per change; the page is served without what clashed.
func (s *Server) reportGather(err error) {
	msg, last := "", ""
	if err != nil {
		msg = err.Error()
	}
	if old := s.gatherErr.Swap(&msg); old != nil {
		last = *old
	}
	if msg != "" && msg != last {
		s.log.Warn("metrics left out of /metrics", "err", msg)
	}
}
