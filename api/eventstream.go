package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/obs"
)

// GET /v2/stream/recentchange serves the JetStream log as Wikimedia EventStreams
// does its feed: one ordered consumer per client, started at the client's
// Last-Event-ID, at ?since= or at the end of the log, feeding a bounded send
// buffer; a client that leaves the buffer full for Config.Events.Stall is dropped
// with a last "error" event, so that it never holds back the others.

// Error codes of the event stream.
const (
	codeTooManyClients  = "too_many_clients"
	codeSlowClient      = "slow_client"
	codePastEnd         = "past_end"
	codeUnknownPosition = "unknown_position"
)

// Settings of the per-client consumers.
const (
	// eventPullBatch bounds the messages a consumer fetches ahead of its client.
	eventPullBatch = 32
	// flushGap is the shortest time between two writes to one client: events
	// that come closer together go out in one write (one system call instead of
	// one per event), at the price of at most this much delay.
	flushGap = 50 * time.Millisecond
	// eventConsumerIdle is how long the server keeps the consumer of a client that
	// vanished without its clean-up (an API killed).
	eventConsumerIdle = time.Minute
	// dropGrace is how long a dropped client's connection may still take to accept
	// what was written before the last event; then the connection is cut.
	dropGrace = 5 * time.Second
	// retryAfterFull is the Retry-After of a 503 answered at the connection limit.
	retryAfterFull = 5
)

// EventStats counts what GET /v2/stream/recentchange did. Every field is safe
// for concurrent use.
type EventStats struct {
	// Clients is the number of clients connected now.
	Clients atomic.Int64
	// Connections counts streams opened.
	Connections atomic.Int64
	// Events counts events written to clients.
	Events atomic.Int64
	// Rewritten counts events whose data held line breaks and was put on one line.
	Rewritten atomic.Int64
	// Unparsable counts events left out of a filtered stream because their fields
	// could not be read.
	Unparsable atomic.Int64
	// Rejected counts clients refused at the connection limit.
	Rejected atomic.Int64
	// DroppedSlow counts clients dropped because they left their send buffer full.
	DroppedSlow atomic.Int64
	// Failed counts streams ended because the log stopped delivering.
	Failed atomic.Int64
	// Unavailable counts requests answered 503 because NATS or the stream could not be reached.
	Unavailable atomic.Int64
	// ResumeGaps counts resumes from a Last-Event-ID older than the stream's retention.
	ResumeGaps atomic.Int64
}

// eventHub holds what the event stream's clients share: the NATS connection
// (opened at the first request), the connection count and the counters.
type eventHub struct {
	cfg   Config
	log   *slog.Logger
	stats EventStats
	done  <-chan struct{} // closed when the server shuts down

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream

	lastWarn atomic.Int64 // Unix ns of the last rate-limited warning
}

// initEvents sets up the event stream of s and its metrics.
func (s *Server) initEvents() {
	s.events = &eventHub{cfg: s.cfg, log: s.log, done: s.done}
}

// collectors returns the metrics of GET /v2/stream/recentchange
// (wikiflow_api_events_…), read from its counters when scraped.
func (h *eventHub) collectors() []prometheus.Collector {
	const sub = subsystem + "_events"
	st := &h.stats
	c := func(name, help string, v *atomic.Int64) prometheus.Collector { return obs.Counter(sub, name, help, v) }
	return []prometheus.Collector{
		obs.Gauge(sub, "clients", "/v2/stream/recentchange clients connected now.", func() float64 { return float64(st.Clients.Load()) }),
		c("streams_opened_total", "/v2/stream/recentchange streams opened.", &st.Connections),
		c("sent_total", "Events written to /v2/stream/recentchange clients.", &st.Events),
		c("rewritten_total", "Events whose data held line breaks and was compacted to one line.", &st.Rewritten),
		c("unparsable_total", "Events left out of filtered streams because their fields could not be read.", &st.Unparsable),
		c("clients_refused_total", "/v2/stream/recentchange clients refused at the connection limit (503).", &st.Rejected),
		c("clients_dropped_slow_total", "/v2/stream/recentchange clients dropped for reading too slowly.", &st.DroppedSlow),
		c("streams_failed_total", "/v2/stream/recentchange streams ended by a JetStream failure.", &st.Failed),
		c("unavailable_responses_total", "/v2/stream/recentchange requests answered 503: NATS or the stream unreachable.", &st.Unavailable),
		c("resume_gaps_total", "Resumes from a Last-Event-ID that retention had already dropped.", &st.ResumeGaps),
	}
}

// EventStats returns the counters of GET /v2/stream/recentchange.
func (s *Server) EventStats() *EventStats { return &s.events.stats }

// jetStream returns the JetStream context, connecting to NATS on first use.
// The connection keeps reconnecting by itself; it is checked on every request.
func (h *eventHub) jetStream() (jetstream.JetStream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.js == nil {
		nc, err := h.cfg.Events.NATS.Connect("api",
			nats.RetryOnFailedConnect(true),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					h.log.Warn("NATS disconnected; live events pause until it is back", "err", err)
				}
			}),
			nats.ReconnectHandler(func(c *nats.Conn) {
				h.log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
			}))
		if err != nil {
			return nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		h.nc, h.js = nc, js
	}
	if !h.nc.IsConnected() {
		return nil, fmt.Errorf("NATS at %s is not reachable (%s)", brokers.Redact(h.cfg.Events.NATS.URL), h.nc.Status())
	}
	return h.js, nil
}

// close closes the NATS connection.
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nc != nil {
		h.nc.Close()
	}
}

// acquire takes a connection slot; it reports false at the limit.
func (h *eventHub) acquire() bool {
	if h.stats.Clients.Add(1) > int64(h.cfg.Events.MaxClients) {
		h.stats.Clients.Add(-1)
		h.stats.Rejected.Add(1)
		return false
	}
	return true
}

func (h *eventHub) release() { h.stats.Clients.Add(-1) }

// warnLimited logs a warning at most once every 10 s (for refusals that come
// in bursts), with the counter that says how many there were.
func (h *eventHub) warnLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := h.lastWarn.Load()
	if now-last < int64(10*time.Second) || !h.lastWarn.CompareAndSwap(last, now) {
		return
	}
	h.log.Warn(msg, args...)
}

// handleEventStream serves GET /v2/stream/recentchange.
func (s *Server) handleEventStream(c *fiber.Ctx) error {
	req, err := parseEventRequest(c, s.cfg.Events.Stream)
	if err != nil {
		return err
	}
	if c.Method() == fiber.MethodHead {
		setEventHeaders(c)
		return nil
	}
	h := s.events
	if !h.acquire() {
		h.warnLimited("event stream at its connection limit: refusing clients", "limit", h.cfg.Events.MaxClients, "rejected_total", h.stats.Rejected.Load())
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfterFull))
		return sendEventError(c, &apiError{Status: fiber.StatusServiceUnavailable, Code: codeTooManyClients,
			Message: fmt.Sprintf("the live event stream serves at most %d clients at once; retry later", h.cfg.Events.MaxClients)})
	}
	cl, err := h.open(req, c.Context().Conn(), c.IP())
	if err != nil {
		h.release()
		var ae *apiError
		if errors.As(err, &ae) {
			if ae.Code == codeTooManyClients {
				h.stats.Rejected.Add(1)
				h.warnLimited("event stream: the stream's consumer limit is reached: refusing clients", "stream", s.cfg.Events.Stream, "rejected_total", h.stats.Rejected.Load())
				c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfterFull))
			}
			return sendEventError(c, ae)
		}
		h.stats.Unavailable.Add(1)
		h.warnLimited("event stream unavailable", "err", err)
		return sendEventError(c, &apiError{Status: fiber.StatusServiceUnavailable, Code: codeUnavailable,
			Message: "the event log (JetStream stream " + s.cfg.Events.Stream + ") is unavailable: " + err.Error()})
	}
	setEventHeaders(c)
	c.Context().SetConnectionClose()
	c.Context().SetBodyStreamWriter(cl.serve)
	return nil
}

func setEventHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
}

// sendEventError answers with the API's JSON error body.
func sendEventError(c *fiber.Ctx, e *apiError) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Status(e.Status)
	return c.Send(appendError(make([]byte, 0, 200), e))
}

// open creates the client's ordered consumer at its start position.
func (h *eventHub) open(req eventRequest, conn net.Conn, remote string) (*eventClient, error) {
	js, err := h.jetStream()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
	defer cancel()
	st, err := js.Stream(ctx, h.cfg.Events.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", h.cfg.Events.Stream, err)
	}
	occ, err := h.start(req, st.CachedInfo().State)
	if err != nil {
		return nil, err
	}
	occ.FilterSubjects = req.filter.subjects()
	occ.InactiveThreshold = eventConsumerIdle
	cons, err := st.OrderedConsumer(ctx, occ)
	if errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
		return nil, &apiError{Status: fiber.StatusServiceUnavailable, Code: codeTooManyClients, cause: err,
			Message: "stream " + h.cfg.Events.Stream + " has as many consumers as nats-server allows (1000 per stream unless the stream's max_consumers or jetstream.limits.default_max_consumers raise it); retry later"}
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(eventPullBatch))
	if err != nil {
		deleteConsumer(st, cons)
		return nil, fmt.Errorf("consume: %w", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	h.stats.Connections.Add(1)
	return &eventClient{
		hub: h, st: st, cons: cons, msgs: msgs, filter: req.filter,
		queue: newSendQueue(h.cfg.Events.Buffer), conn: conn, remote: remote,
		ctx: cctx, cancel: ccancel,
	}, nil
}

// start returns where the client's consumer begins: strictly after its
// Last-Event-ID, at ?since= (the time an event entered the log), or after the
// last event logged so far.
func (h *eventHub) start(req eventRequest, state jetstream.StreamState) (jetstream.OrderedConsumerConfig, error) {
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy}
	switch {
	case req.hasResume:
		if req.resume > state.LastSeq {
			return occ, &apiError{Status: fiber.StatusConflict, Code: codePastEnd, Parameter: headerLastEventID,
				Message: fmt.Sprintf("Last-Event-ID names offset %d, past the end of stream %s (last sequence %d): the log was reset or lost its tail; reconnect without Last-Event-ID, or with ?since=",
					req.resume, h.cfg.Events.Stream, state.LastSeq)}
		}
		occ.OptStartSeq = req.resume + 1
		if occ.OptStartSeq < state.FirstSeq {
			h.stats.ResumeGaps.Add(1)
			h.log.Warn("a client resumes from a position retention has dropped; it continues at the oldest event kept",
				"stream", h.cfg.Events.Stream, "last_event_offset", req.resume, "first_seq", state.FirstSeq, "dropped", state.FirstSeq-occ.OptStartSeq)
			occ.OptStartSeq = state.FirstSeq
		}
	case req.hasSince:
		since := req.since
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	default:
		occ.OptStartSeq = state.LastSeq + 1
	}
	return occ, nil
}

// deleteConsumer removes a client's consumer; a failure leaves it to the
// server's inactivity clean-up.
func deleteConsumer(st jetstream.Stream, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if info := cons.CachedInfo(); info != nil {
		_ = st.DeleteConsumer(ctx, info.Name)
	}
}
