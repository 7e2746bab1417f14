// Package api is wikiflow's HTTP API: it serves the Redis projection written by
// the aggregate stage (see internal/projection) as JSON, following the contract of
// the wikiflow HTTP API: GET /stats in the original shape ({"stats": {domain:
// count}, ...}) with windows, filters and groupings, /stats/timeseries,
// /stats/top/pages, /stats/top/editors, the /stats/stream Server-Sent Events,
// /healthz, /readyz, /metrics and /openapi.json. GET /v2/stream/recentchange
// serves the JetStream log itself as Wikimedia EventStreams serves its feed
// (eventstream*.go): the one route that reads NATS, not Redis.
//
// Every request resolves the projection namespace through the pointer key once and
// reads only that namespace's keys. Windows end at the projection's as_of (the
// newest event time applied) and are made of event-time minute buckets (a 24 h
// window uses hour buckets for its whole hours). Counts are exact sums of the
// counters; only unique_editors is a HyperLogLog estimate. The per-page and
// per-editor minute sets live only MinutePagesTTL, so 24 h top lists cover the 24
// hour buckets up to as_of's hour (the response's from field says where they start).
// Parameters are validated: a bad, unknown or repeated one is a 400 naming it.
//
// The parameterless GET /stats costs one pipelined Redis round trip (pointer,
// legacy hash, meta) and its encoded body is reused for Config.CacheTTL (250 ms by
// default), so its freshness_seconds may lag by that much.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/api/web"
	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/obs"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// shutdownTimeout bounds the graceful shutdown of Run.
const shutdownTimeout = 10 * time.Second

// readyTimeout is how fast Redis must answer for /readyz to report ready.
const readyTimeout = 500 * time.Millisecond

// Routes of the dashboard (package web), as openapi.json names them.
const (
	pageRoute   = web.PagePath
	assetsRoute = web.AssetPrefix + "{file}"
)

// routes lists the paths the API serves (the metrics' route labels).
var routes = []string{
	"/stats", "/stats/timeseries", "/stats/top/pages", "/stats/top/editors", "/stats/stream",
	"/healthz", "/readyz", "/metrics", "/openapi.json", eventStreamRoute,
	pageRoute, assetsRoute,
}

// routePaths maps the paths fiber matches to their routes where the two differ.
var routePaths = map[string]string{web.AssetPrefix + "*": assetsRoute}

// Server is the API server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	rdb     redis.UniversalClient
	reader  *projection.Reader // reads rdb
	app     *fiber.App
	stats   Stats
	metrics *httpMetrics
	known   map[string]string // path fiber matched -> route label

	lastNS     atomic.Pointer[string]
	cache      atomic.Pointer[cachedBody]
	fastFlight flight

	registry  *prometheus.Registry   // the API's own metrics
	stages    *stagePages            // nil without Config.StageMetrics
	gatherErr atomic.Pointer[string] // the last problem gathering /metrics reported
	events    *eventHub              // GET /v2/stream/recentchange

	lastLog        atomic.Int64 // Unix ns of the last rate-limited log line
	lastRefusedLog atomic.Int64 // Unix ns of the last /stats/stream refusal logged
	hub            *streamHub
	keepAlive      time.Duration // keep-alive period of /stats/stream

	done      chan struct{}
	closeOnce sync.Once
	addr      atomic.Pointer[net.TCPAddr]
}

// New validates cfg and returns a server; it does not contact Redis (a Redis
// that is down makes requests answer 503 until it comes back).
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := cfg.Redis.Options()
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = cfg.RedisTimeout
	opts.ReadTimeout = cfg.RedisTimeout
	opts.WriteTimeout = cfg.RedisTimeout
	opts.PoolTimeout = cfg.RedisTimeout
	// A refused connection should fail the request quickly rather than use its
	// whole deadline on dial retries; go-redis keeps probing in the background and
	// requests succeed again as soon as Redis is back.
	opts.DialerRetries = 2
	opts.DialerRetryTimeout = 50 * time.Millisecond
	s := &Server{
		cfg:     cfg,
		log:     log.With("component", "api"),
		rdb:     cfg.Redis.NewClient(opts),
		metrics: newHTTPMetrics(routes),
		known:   map[string]string{},
		done:    make(chan struct{}),

		keepAlive: keepAliveEvery,
	}
	s.reader = projection.NewReader(s.rdb, cfg.Base)
	for _, r := range routes {
		s.known[r] = r
	}
	for path, r := range routePaths {
		s.known[path] = r
	}
	cs := s.collectors()
	if len(cfg.StageMetrics) > 0 {
		s.stages = newStagePages(cfg.StageMetrics, s.log)
		cs = append(cs, s.stages.up)
	}
	s.hub = newStreamHub(s, cfg.StreamMaxClients)
	s.initEvents()
	s.registry = obs.NewRegistry(append(cs, s.events.collectors()...)...)
	s.app = s.newApp()
	return s, nil
}

func (s *Server) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "wikiflow",
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           90 * time.Second,
		ReadBufferSize:        8192,
	})
	app.Server().Handler = s.unknownMethods(app.Server().Handler)
	app.Use(s.measure)
	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e any) {
			s.log.Error("panic in handler", "path", c.Path(), "panic", fmt.Sprint(e))
		},
	}))
	if len(s.cfg.CORSOrigins) > 0 {
		app.Use(cors.New(cors.Config{
			AllowOrigins:  strings.Join(s.cfg.CORSOrigins, ","),
			AllowMethods:  "GET,HEAD,OPTIONS",
			ExposeHeaders: "ETag",
			MaxAge:        600,
		}))
	}
	// JSON and the page are compressed for clients that ask (the 24 h series is
	// tens of KB); the streams are not, a compressor would hold their frames back.
	app.Use(compress.New(compress.Config{
		Level: compress.LevelBestSpeed,
		Next: func(c *fiber.Ctx) bool {
			p := c.Path()
			return p == "/stats/stream" || p == eventStreamRoute
		},
	}))
	timed := func(h fiber.Handler) fiber.Handler {
		return func(c *fiber.Ctx) error {
			ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout)
			defer cancel()
			c.SetUserContext(ctx)
			return h(c)
		}
	}
	app.Get("/stats", timed(s.handleStats))
	app.Get("/stats/timeseries", timed(s.handleTimeseries))
	app.Get("/stats/top/pages", timed(s.handleTopPages))
	app.Get("/stats/top/editors", timed(s.handleTopEditors))
	app.Get("/stats/stream", s.handleStream)
	app.Get("/healthz", s.handleHealth)
	app.Get("/readyz", timed(s.handleReady))
	app.Get("/metrics", s.handleMetrics)
	app.Get("/openapi.json", s.handleOpenAPI)
	app.Get(eventStreamRoute, s.handleEventStream)
	web.Register(app)
	return app
}

// App returns the fiber application (for tests: app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Addr returns the address Run listens on, or nil before it listens.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return a
	}
	return nil
}

// Run listens on Config.Addr and serves until ctx is cancelled, then stops
// accepting, ends the open streams, waits for requests in flight (up to 10 s)
// and closes the Redis client. It returns nil after a shutdown caused by ctx.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.addr.Store(a)
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "redis", brokers.Redact(s.cfg.Redis.URL), "base", s.cfg.Base)
	served := make(chan error, 1)
	go func() { served <- s.app.Listener(ln) }()
	select {
	case err := <-served:
		s.Close()
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	s.stopStreams()
	err = s.app.ShutdownWithTimeout(shutdownTimeout)
	<-served
	s.Close()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (s *Server) stopStreams() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// Close ends the open streams and closes the Redis client. Run calls it; tests
// that use only App call it themselves.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stopStreams()
		err = s.rdb.Close()
		s.events.close()
	})
	return err
}

// redisCtx returns the context of a request's Redis work: the request's context
// with the Redis deadline.
func (s *Server) redisCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.RedisTimeout)
}

// sendJSON sends a JSON body with its ETag, or 304 when the client has it.
func (s *Server) sendJSON(c *fiber.Ctx, body []byte, etag string) error {
	if etag == "" {
		etag = etagOf(body)
	}
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(body)
}

// logLimited logs a warning at most once every 5 s (for failures that repeat on
// every request while Redis is down).
func (s *Server) logLimited(msg string, err error) {
	if logDue(&s.lastLog) {
		s.log.Warn(msg, "err", err, "redis_failures", s.stats.RedisFailures.Load())
	}
}

// logDue reports whether 5 s passed since the time in last (Unix ns), and if so
// sets it to now: one caller in 5 s gets true.
func logDue(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	l := last.Load()
	return now-l >= int64(5*time.Second) && last.CompareAndSwap(l, now)
}

// handleHealth serves GET /healthz.
func (s *Server) handleHealth(c *fiber.Ctx) error {
	return s.sendJSON(c, []byte(`{"status":"ok"}`), "")
}

// handleReady serves GET /readyz: ready when Redis answers within 500 ms and the
// projection was updated within MaxStaleness.
func (s *Server) handleReady(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), min(readyTimeout, s.cfg.RedisTimeout))
	defer cancel()
	h, err := s.readHead(ctx, false)
	var reasons []string
	if err != nil {
		reasons = append(reasons, "redis: "+err.Error())
	} else if s.cfg.MaxStaleness > 0 {
		switch {
		case h.Meta.Updated.IsZero():
			reasons = append(reasons, "projection "+h.Keys.NS+" was never updated (no "+h.Keys.Meta()+" "+"updated_ms)")
		default:
			age := time.Since(h.Meta.Updated)
			if age > s.cfg.MaxStaleness {
				reasons = append(reasons, fmt.Sprintf("projection %s last updated %s ago (max-staleness %s)", h.Keys.NS, age.Round(time.Second), s.cfg.MaxStaleness))
			}
		}
	}
	if len(reasons) > 0 {
		b := []byte(`{"status":"not ready","reasons":[`)
		for i, r := range reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, "],"...)
		e := appendError(nil, &apiError{Status: fiber.StatusServiceUnavailable, Code: codeUnavailable, Message: strings.Join(reasons, "; ")})
		b = append(b, e[1:]...)
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		c.Status(fiber.StatusServiceUnavailable)
		return c.Send(b)
	}
	b := []byte(`{"status":"ready","redis":"ok","namespace":`)
	b = appendString(b, h.Keys.NS)
	b = append(b, `,"freshness_seconds":`...)
	if !h.Meta.Updated.IsZero() {
		b = appendFloat(b, freshness(time.Now(), h.Meta.Updated))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, '}')
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.sendJSON(c, b, "")
}
