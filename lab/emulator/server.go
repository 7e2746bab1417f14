// Package emulator is a local stand-in for Wikimedia EventStreams
// (https://stream.wikimedia.org/v2/stream/recentchange): an HTTP server that serves
// the events of a Source over real Server-Sent Events, framed byte for byte like the
// real service, so ingest can be developed, tested and load-tested without the
// network, at any speed, and against the failures the real feed shows.
//
// The body opens with the comment ":ok" and a blank line, then carries one frame per
// event: "event: message", "id: <json array>", "data: <one-line json>", a blank
// line; there is no heartbeat. Each frame is flushed as soon as it is written. The id
// is Wikimedia's array of topic-partition positions,
//
//	[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":<n>},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]
//
// where n is the event's position in the emulator's sequence (pass × Len + index).
// A client resumes with the Last-Event-ID header (offset or timestamp form) or starts
// from a time with ?since=<ISO-8601 or Unix ms>; without either it starts at the first
// event (the real service starts at the newest). Without Loop the stream goes silent,
// but stays open (until its lifetime ends), after the last event.
//
// Pacing follows each event's offset divided by Config.Speed, measured from the start
// of the response, so a resumed stream starts serving at once.
//
// Like the real service it closes each stream after Config.ConnLifetime (15
// minutes by default), answers 429 with Retry-After past Config.MaxConns
// concurrent streams (2 by default), and with Config.Retention starts a since
// older than the retention at the end, without saying so.
//
// Faults (Config.CutEvery, SilentAfter, ErrorEvery, ErrorOnResume, RepeatOnResume,
// MalformedEvery, HugeEvery, CanaryEvery, CRLF) are counted per connection over
// event frames.
// Malformed, huge and canary frames are injected as extra frames after the event
// they follow, carrying that event's id, never in its place: every real event is
// still served, and resuming after an injected frame loses nothing. Stats counts
// every frame, fault and connection.
package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// hugeSize is the size of a HugeEvery frame's data.
	hugeSize = 2 << 20
	// writeTimeout bounds one frame's write, so a stalled client frees its slot.
	writeTimeout = 30 * time.Second
	// rebaseDrift is how far Rebase lets an event's time stray from when it is
	// served before re-anchoring (the real feed's events arrive within a second or
	// two of their meta.dt).
	rebaseDrift = 10 * time.Second
	// gapLimit is the jump in meta.dt between neighbours that Rebase closes.
	gapLimit = time.Hour
	// maxPosition bounds the offsets accepted in Last-Event-ID.
	maxPosition = 1 << 40
	// maxMillis bounds timestamps accepted in since and Last-Event-ID (year 9999).
	maxMillis = 253402300799999
	// maxLoopShift bounds how far Loop moves event times: positions beyond it are
	// refused rather than served with overflowing times.
	maxLoopShift = 200 * 365 * 24 * time.Hour
	// noTime marks an event whose meta.dt could not be read.
	noTime = math.MinInt64
)

// Stats counts what the emulator served. Every field only grows except Active.
type Stats struct {
	// Connections counts streams opened (answered 200).
	Connections atomic.Int64
	// Active is the number of streams open now.
	Active atomic.Int64
	// Resumes counts streams opened with Last-Event-ID.
	Resumes atomic.Int64
	// Rejected counts requests answered 429 because MaxConns streams were open.
	Rejected atomic.Int64
	// BadRequests counts requests answered 400 (bad since or Last-Event-ID).
	BadRequests atomic.Int64
	// Forbidden counts requests answered 403 (no User-Agent, RequireUserAgent set).
	Forbidden atomic.Int64
	// Frames counts frames written completely, of every kind.
	Frames atomic.Int64
	// Events counts real event frames written, repeats included.
	Events atomic.Int64
	// Repeats counts event frames re-sent by RepeatOnResume.
	Repeats atomic.Int64
	// Cuts counts connections aborted in the middle of a frame (CutEvery).
	Cuts atomic.Int64
	// Silences counts connections that went silent (SilentAfter).
	Silences atomic.Int64
	// Errors counts "event: error" frames (ErrorEvery, ErrorOnResume).
	Errors atomic.Int64
	// Expired counts streams closed at the end of ConnLifetime.
	Expired atomic.Int64
	// SinceTooOld counts requests whose since was older than Retention, started
	// at the end instead.
	SinceTooOld atomic.Int64
	// Malformed counts injected invalid-JSON frames (MalformedEvery).
	Malformed atomic.Int64
	// Huge counts injected 2 MiB frames (HugeEvery).
	Huge atomic.Int64
	// Canaries counts injected canary events (CanaryEvery).
	Canaries atomic.Int64
}

// Server serves a Source as an EventStreams endpoint.
type Server struct {
	cfg   Config
	src   Source
	log   *slog.Logger
	stats Stats
	n     int
	// offs[i] is event i's pacing offset relative to event 0.
	offs []time.Duration
	// dtMs[i] is event i's meta.dt in Unix ms in pass 0, after Rebase, or noTime.
	dtMs []int64
	// shifts[i] is the Rebase shift of event i (nil without Rebase).
	shifts []time.Duration
	// minMs is the earliest meta.dt of pass 0 (Unix ms).
	minMs int64
	// span is the range of pass 0's event times rounded up to a second: how far
	// each pass moves them without Rebase (see passShift).
	span time.Duration
	// epoch moves every event time (whole seconds). With Rebase and Loop it is set
	// by the first request (see setEpoch), then fixed, so every connection sees
	// the same time for the same event.
	epoch     time.Duration
	epochOnce sync.Once
	// rebased is when Rebase dated the events (zero without Rebase).
	rebased time.Time
	// period is the pacing length of one pass.
	period time.Duration

	mu   sync.Mutex
	addr net.Addr
}

// New checks cfg, indexes the events of src (reading each once) and returns a
// server; log receives the server's logs under component=emulator.
func New(cfg Config, src Source, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("emulator config: %w", err)
	}
	if src == nil || src.Len() < 1 {
		return nil, errors.New("emulator: the source has no events")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, src: src, log: log.With("component", "emulator"), n: src.Len()}
	s.offs = make([]time.Duration, s.n)
	s.dtMs = make([]int64, s.n)
	dts := make([]time.Time, s.n)
	var first time.Duration
	undated := 0
	for i := range s.n {
		data, off := src.Event(i)
		if i == 0 {
			first = off
		}
		s.offs[i] = off - first
		for _, c := range data {
			if c == '\n' || c == '\r' {
				return nil, fmt.Errorf("emulator: source event %d: data contains a line break", i)
			}
		}
		s.dtMs[i] = noTime
		if f, ok := locate(data); ok && f.dt.ok() {
			if t, _, ok := parseDT(data[f.dt.start:f.dt.end]); ok {
				dts[i] = t
				s.dtMs[i] = t.UnixMilli()
			}
		}
		if s.dtMs[i] == noTime {
			undated++
		}
	}
	if undated > 0 {
		s.log.Warn("events without a readable meta.dt are served unchanged and never match since or a timestamp resume", "events", undated)
	}
	if cfg.Rebase {
		s.rebased = time.Now()
		s.rebase(dts, s.rebased)
	}
	if s.n > 1 {
		last := s.offs[s.n-1]
		s.period = last + last/time.Duration(s.n-1)
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, ms := range s.dtMs {
		if ms != noTime {
			lo, hi = min(lo, ms), max(hi, ms)
		}
	}
	if lo <= hi {
		s.minMs = lo
		s.span = time.Duration((hi-lo)/1000+1) * time.Second
	}
	return s, nil
}

// Stats returns the server's live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Addr returns the address the server listens on, or "" before Run or Serve has
// started listening.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		return ""
	}
	return s.addr.String()
}

// Run listens on Config.Addr and serves until ctx is cancelled; then it ends every
// stream, shuts the server down and returns nil.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (e.g. on port 0); it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	streams, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return streams },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("serving", "url", "http://"+ln.Addr().String()+s.cfg.Path, "events", s.n,
		"speed", s.cfg.Speed, "loop", s.cfg.Loop, "rebase", s.cfg.Rebase)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	endStreams()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	<-errc
	s.log.Info("stopped", "frames", s.stats.Frames.Load(), "connections", s.stats.Connections.Load())
	return nil
}

// Handler returns the HTTP handler of the stream (for httptest or another mux).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.cfg.Path {
		writeError(w, http.StatusNotFound, "no stream at "+r.URL.Path+"; the stream is at "+s.cfg.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
		return
	}
	if s.cfg.RequireUserAgent && r.UserAgent() == "" {
		s.stats.Forbidden.Add(1)
		writeError(w, http.StatusForbidden, "a descriptive User-Agent header with contact information is required")
		return
	}
	start, resumed, err := s.startPosition(r)
	if err != nil {
		s.stats.BadRequests.Add(1)
		s.log.Info("bad request", "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.stats.Active.Add(1) > int64(s.cfg.MaxConns) {
		s.stats.Active.Add(-1)
		s.stats.Rejected.Add(1)
		w.Header().Set("Retry-After", strconv.FormatInt(int64(ceilSecond(s.cfg.RetryAfter)/time.Second), 10))
		writeError(w, http.StatusTooManyRequests,
			fmt.Sprintf("too many concurrent connections: at most %d streams at a time", s.cfg.MaxConns))
		return
	}
	defer s.stats.Active.Add(-1)
	s.stats.Connections.Add(1)
	if resumed {
		s.stats.Resumes.Add(1)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	s.log.Info("stream opened", "remote", r.RemoteAddr, "start", start, "resumed", resumed)
	c := &conn{s: s, w: w, rc: http.NewResponseController(w), nl: "\n", remote: r.RemoteAddr}
	if s.cfg.CRLF {
		c.nl = "\r\n"
	}
	reason := c.stream(r.Context(), start, resumed)
	s.log.Info("stream closed", "remote", r.RemoteAddr, "reason", reason, "events", c.events)
}

// writeError answers with a JSON error body in the shape of Wikimedia's errors.
func writeError(w http.ResponseWriter, status int, detail string) {
	body, _ := json.Marshal(map[string]any{
		"type":   "https://mediawiki.org/wiki/HyperSwitch/errors/" + strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"),
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// startPosition returns where a request starts: after its Last-Event-ID, else at
// its since time, else at 0.
func (s *Server) startPosition(r *http.Request) (pos int64, resumed bool, err error) {
	s.epochOnce.Do(func() {
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			if pos, err := s.resumePosition(id); err == nil && s.inRange(pos, "") == nil {
				s.setEpoch(pos)
			}
		}
	})
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		pos, err := s.resumePosition(id)
		if err == nil {
			err = s.inRange(pos, "Last-Event-ID "+strconv.Quote(id))
		}
		return pos, true, err
	}
	if since := r.URL.Query().Get("since"); since != "" {
		ms, err := parseSince(since)
		if err != nil {
			return 0, false, err
		}
		var pos int64
		if now := time.Now(); s.cfg.Retention > 0 && ms < now.Add(-s.cfg.Retention).UnixMilli() {
			// Like Wikimedia past its retention: start at the end, without saying so.
			s.stats.SinceTooOld.Add(1)
			s.log.Info("since is older than the retention: starting at the end", "since", since, "retention", s.cfg.Retention)
			pos = s.endPosition(now)
		} else {
			pos = s.firstAtOrAfter(ms)
		}
		return pos, false, s.inRange(pos, "since "+strconv.Quote(since))
	}
	return 0, false, nil
}

// inRange refuses positions so far into Loop passes that event times or pacing
// offsets would overflow.
func (s *Server) inRange(pos int64, what string) error {
	pass := pos / int64(s.n)
	limit := int64(maxLoopShift / max(s.span, s.period, time.Second))
	if pass > limit {
		return fmt.Errorf("%s: position %d is beyond the %d passes the emulator can serve", what, pos, limit)
	}
	return nil
}

// idEntry is one topic-partition position of an SSE id.
type idEntry struct {
	Topic     string `json:"topic"`
	Partition *int   `json:"partition"`
	Offset    *int64 `json:"offset"`
	Timestamp *int64 `json:"timestamp"`
}

// resumePosition returns the position after the Last-Event-ID value id: after its
// first entry with an offset >= 0, else at the first event whose meta.dt is at or
// after its first timestamp entry.
func (s *Server) resumePosition(id string) (int64, error) {
	var entries []idEntry
	if err := json.Unmarshal([]byte(id), &entries); err != nil {
		return 0, fmt.Errorf("Last-Event-ID %q: want a JSON array of {topic, partition, offset or timestamp}: %v", id, err)
	}
	for _, e := range entries {
		if e.Offset != nil && *e.Offset >= 0 {
			if *e.Offset >= maxPosition {
				return 0, fmt.Errorf("Last-Event-ID %q: offset %d is out of range", id, *e.Offset)
			}
			pos := *e.Offset + 1
			if !s.cfg.Loop {
				pos = min(pos, int64(s.n))
			}
			return pos, nil
		}
	}
	for _, e := range entries {
		if e.Timestamp != nil {
			if *e.Timestamp < 0 || *e.Timestamp > maxMillis {
				return 0, fmt.Errorf("Last-Event-ID %q: timestamp %d is out of range", id, *e.Timestamp)
			}
			return s.firstAtOrAfter(*e.Timestamp), nil
		}
	}
	return 0, fmt.Errorf("Last-Event-ID %q: no entry has an offset >= 0 or a timestamp", id)
}

// parseSince reads a since parameter: Unix milliseconds or an ISO-8601 time
// (RFC 3339; a time without zone or a bare date is taken as UTC).
func parseSince(v string) (int64, error) {
	bad := fmt.Errorf("since %q: want an ISO-8601 time such as 2026-05-05T11:17:40Z or Unix milliseconds", v)
	if v != "" && strings.Trim(v, "0123456789") == "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms > maxMillis {
			return 0, bad
		}
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			if ms := t.UnixMilli(); ms >= 0 && ms <= maxMillis {
				return ms, nil
			}
			return 0, bad
		}
	}
	return 0, bad
}

// sseID returns the SSE id of position pos (with meta.dt ms for TimestampIDs).
func (s *Server) sseID(pos, ms int64) string {
	field, v := "offset", pos
	if s.cfg.TimestampIDs && ms != noTime {
		field, v = "timestamp", ms
	}
	return `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"` + field + `":` + strconv.FormatInt(v, 10) +
		`},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`
}

// huge returns a copy of the event data with meta.id set to id and its comment
// padded so that the whole is hugeSize bytes (or a little more for a large event).
func huge(data []byte, id string) []byte {
	if len(data) == 0 || data[0] != '{' {
		data = []byte("{}")
	}
	f, ok := locate(data)
	if !ok {
		f = fields{}
	}
	if f.id.ok() {
		data = rewrite(data, f, id, 0)
		f, _ = locate(data)
	}
	var head, tail []byte
	if f.comment.ok() {
		head, tail = data[:f.comment.start], data[f.comment.end:]
	} else {
		// No comment: insert one as the first member.
		rest := bytes.TrimLeft(data[1:], " \t")
		sep := `",`
		if len(rest) > 0 && rest[0] == '}' {
			sep = `"`
		}
		head, tail = []byte(`{"comment":"`), append([]byte(sep), rest...)
	}
	pad := max(hugeSize-len(head)-len(tail), 1)
	out := make([]byte, 0, len(head)+pad+len(tail))
	out = append(out, head...)
	for range pad {
		out = append(out, 'x')
	}
	return append(out, tail...)
}
