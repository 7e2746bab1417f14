package api

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/internal/obs"
)

// Stats counts what the API did. Every field is safe for concurrent use.
type Stats struct {
	// RequestsServed counts HTTP requests answered.
	RequestsServed atomic.Int64 `help:"HTTP requests answered"`
	// RedisFailures counts failed Redis calls.
	RedisFailures atomic.Int64 `help:"failed Redis calls"`
	// Unavailable counts 503 answers.
	Unavailable atomic.Int64 `help:"requests answered 503 (Redis unavailable or too slow)"`
	// InternalErrors counts 500 answers.
	InternalErrors atomic.Int64 `help:"requests answered 500"`
	// BadCounters counts counter values in Redis that were not integers (skipped).
	BadCounters atomic.Int64 `help:"non-integer counter values skipped"`
	// CacheHits counts parameterless /stats answers served from the body cache.
	CacheHits atomic.Int64 `help:"parameterless /stats answers served from the cache"`
	// StreamClients is the number of /stats/stream clients connected now.
	StreamClients atomic.Int64 `metric:"gauge" help:"/stats/stream clients connected"`
	// StreamFeeds is the number of distinct parameter sets /stats/stream reads now.
	StreamFeeds atomic.Int64 `metric:"gauge" help:"/stats/stream parameter sets read now (one Redis read per interval each)"`
	// StreamReads counts the Redis reads made for /stats/stream.
	StreamReads atomic.Int64 `help:"Redis reads made for /stats/stream, each shared by the clients of one parameter set"`
	// StreamRefused counts /stats/stream clients refused at the client limit.
	StreamRefused atomic.Int64 `help:"/stats/stream clients refused at the client limit (503)"`
	// StreamEvents counts events sent on /stats/stream.
	StreamEvents atomic.Int64 `help:"events sent on /stats/stream"`
}

// latencyBuckets are the upper bounds (seconds) of the request latency histogram.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// otherRoute labels requests that matched no route.
const otherRoute = "other"

// routeMetrics holds the request metrics of one route.
type routeMetrics struct {
	buckets  []atomic.Int64 // cumulative counts are computed when writing
	count    atomic.Int64
	sumNanos atomic.Int64
	statusMu sync.Mutex
	status   map[int]*atomic.Int64
}

func (m *routeMetrics) statusCounter(code int) *atomic.Int64 {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	c := m.status[code]
	if c == nil {
		c = new(atomic.Int64)
		m.status[code] = c
	}
	return c
}

// httpMetrics holds the request metrics of every route.
type httpMetrics struct {
	routes map[string]*routeMetrics // fixed after New: read without locking
	names  []string
}

func newHTTPMetrics(routes []string) *httpMetrics {
	h := &httpMetrics{routes: map[string]*routeMetrics{}}
	for _, r := range append(routes, otherRoute) {
		h.routes[r] = &routeMetrics{buckets: make([]atomic.Int64, len(latencyBuckets)), status: map[int]*atomic.Int64{}}
		h.names = append(h.names, r)
	}
	sort.Strings(h.names)
	return h
}

func (h *httpMetrics) observe(route string, code int, d time.Duration) {
	m := h.routes[route]
	if m == nil {
		m = h.routes[otherRoute]
	}
	m.statusCounter(code).Add(1)
	m.count.Add(1)
	m.sumNanos.Add(int64(d))
	sec := d.Seconds()
	for i, ub := range latencyBuckets {
		if sec <= ub {
			m.buckets[i].Add(1)
			break
		}
	}
}

func (h *httpMetrics) write(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	bw.WriteString("# HELP wikiflow_api_requests_total HTTP requests answered, by route and status.\n# TYPE wikiflow_api_requests_total counter\n")
	for _, r := range h.names {
		m := h.routes[r]
		m.statusMu.Lock()
		codes := make([]int, 0, len(m.status))
		for c := range m.status {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			bw.WriteString(`wikiflow_api_requests_total{route="` + r + `",status="` + strconv.Itoa(c) + `"} ` + strconv.FormatInt(m.status[c].Load(), 10) + "\n")
		}
		m.statusMu.Unlock()
	}
	bw.WriteString("# HELP wikiflow_api_request_duration_seconds Time to answer a request (for /stats/stream: until the stream starts).\n# TYPE wikiflow_api_request_duration_seconds histogram\n")
	for _, r := range h.names {
		m := h.routes[r]
		var cum int64
		for i, ub := range latencyBuckets {
			cum += m.buckets[i].Load()
			bw.WriteString(`wikiflow_api_request_duration_seconds_bucket{route="` + r + `",le="` + strconv.FormatFloat(ub, 'g', -1, 64) + `"} ` + strconv.FormatInt(cum, 10) + "\n")
		}
		n := m.count.Load()
		bw.WriteString(`wikiflow_api_request_duration_seconds_bucket{route="` + r + `",le="+Inf"} ` + strconv.FormatInt(n, 10) + "\n")
		bw.WriteString(`wikiflow_api_request_duration_seconds_sum{route="` + r + `"} ` + strconv.FormatFloat(time.Duration(m.sumNanos.Load()).Seconds(), 'g', -1, 64) + "\n")
		bw.WriteString(`wikiflow_api_request_duration_seconds_count{route="` + r + `"} ` + strconv.FormatInt(n, 10) + "\n")
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

// AddMetricsSource adds a writer of Prometheus text lines to /metrics, called
// after the API's own metrics and before the stages' pages (Config.StageMetrics) on every scrape.
func (s *Server) AddMetricsSource(src func(w io.Writer)) {
	s.sourcesMu.Lock()
	defer s.sourcesMu.Unlock()
	s.sources = append(s.sources, src)
}

// handleMetrics serves GET /metrics in the Prometheus text format.
func (s *Server) handleMetrics(c *fiber.Ctx) error {
	var b bytesBuffer
	s.metrics.write(&b)
	b.WriteString("# HELP wikiflow_api_redis_errors_total Failed Redis calls.\n# TYPE wikiflow_api_redis_errors_total counter\n")
	b.WriteString("wikiflow_api_redis_errors_total " + strconv.FormatInt(s.stats.RedisFailures.Load(), 10) + "\n")
	obs.WriteMetrics(&b, "api", &s.stats)
	s.sourcesMu.Lock()
	srcs := append([]func(io.Writer){}, s.sources...)
	s.sourcesMu.Unlock()
	for _, src := range srcs {
		src(&b)
	}
	if s.stages != nil {
		s.stages.write(&b)
	}
	c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(b.buf)
}

// bytesBuffer is a minimal io.Writer/io.StringWriter over a byte slice.
type bytesBuffer struct{ buf []byte }

func (b *bytesBuffer) Write(p []byte) (int, error) { b.buf = append(b.buf, p...); return len(p), nil }

func (b *bytesBuffer) WriteString(s string) (int, error) {
	b.buf = append(b.buf, s...)
	return len(s), nil
}
