package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// conn is one open stream.
type conn struct {
	s      *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	nl     string
	remote string
	buf    []byte
	events int // event frames written on this connection
	// resumeError is set once the ErrorOnResume frame is written.
	resumeError bool
}

// write writes b and flushes it.
func (c *conn) write(b []byte) error {
	_ = c.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.rc.Flush()
}

// frame builds a frame of type typ; id is omitted when empty.
func (c *conn) frame(typ, id string, data []byte) []byte {
	b := sse.AppendFrame(c.buf[:0], typ, id, data, c.nl)
	if cap(b) <= 64<<10 {
		c.buf = b
	}
	return b
}

// send writes a whole frame and counts it.
func (c *conn) send(frame []byte) error {
	if err := c.write(frame); err != nil {
		return err
	}
	c.s.stats.Frames.Add(1)
	return nil
}

// every reports whether the k-th event frame is hit by a fault set to n.
func every(n, k int) bool { return n > 0 && k%n == 0 }

// errLifetime is the cause of a stream's end at the end of ConnLifetime.
var errLifetime = errors.New("connection lifetime reached")

// stream serves from position start until the client leaves, the server stops,
// the stream's lifetime ends or a fault ends it, and returns why it ended.
func (c *conn) stream(ctx context.Context, start int64, resumed bool) string {
	if d := c.s.cfg.ConnLifetime; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, errLifetime)
		defer cancel()
	}
	reason := c.serve(ctx, start, resumed)
	if errors.Is(context.Cause(ctx), errLifetime) {
		c.s.stats.Expired.Add(1)
		return "lifetime of " + c.s.cfg.ConnLifetime.String() + " reached"
	}
	return reason
}

// serve writes the stream's frames until ctx ends or a fault ends the stream.
func (c *conn) serve(ctx context.Context, start int64, resumed bool) string {
	s, cfg := c.s, c.s.cfg
	if err := c.write([]byte(":ok" + c.nl + c.nl)); err != nil {
		return "write: " + err.Error()
	}
	p := newPacer(ctx, s, start)
	defer p.stop()
	pos := start
	if resumed && cfg.RepeatOnResume > 0 {
		pos = max(start-int64(cfg.RepeatOnResume), 0)
	}
	for ; ; pos++ {
		if ctx.Err() != nil {
			return "closed"
		}
		if !cfg.Loop && pos >= int64(s.n) {
			<-ctx.Done()
			return "closed after the last event"
		}
		data, ms := s.eventAt(pos)
		if !p.until(pos, ms) {
			return "closed"
		}
		if cfg.SilentAfter > 0 && c.events == cfg.SilentAfter {
			s.stats.Silences.Add(1)
			p.sleep(cfg.SilentFor)
			return "silence fault"
		}
		if reason, end := c.event(pos, start, resumed, data, ms); end {
			return reason
		}
	}
}

// event writes the frames of position pos (data, meta.dt ms) and those the faults
// put before or after it; end reports that the stream must end, and why.
func (c *conn) event(pos, start int64, resumed bool, data []byte, ms int64) (reason string, end bool) {
	s, cfg := c.s, c.s.cfg
	k := c.events + 1
	if every(cfg.ErrorEvery, k) {
		if err := c.sendError(fmt.Sprintf("emulated server error before event at position %d", pos)); err != nil {
			return "write: " + err.Error(), true
		}
		return "error fault", true
	}
	if resumed && cfg.ErrorOnResume == k && !c.resumeError {
		c.resumeError = true
		if err := c.sendError(fmt.Sprintf("emulated error at the resume point, position %d", pos)); err != nil {
			return "write: " + err.Error(), true
		}
	}
	id := s.sseID(pos, ms)
	frame := c.frame("message", id, data)
	if every(cfg.CutEvery, k) {
		_ = c.write(frame[:len(frame)/2])
		s.stats.Cuts.Add(1)
		s.log.Info("stream closed", "remote", c.remote, "reason", "cut fault", "position", pos, "events", c.events)
		panic(http.ErrAbortHandler)
	}
	if err := c.send(frame); err != nil {
		return "write: " + err.Error(), true
	}
	c.events = k
	s.stats.Events.Add(1)
	if pos < start {
		s.stats.Repeats.Add(1)
	}
	if err := c.inject(k, pos, id, data, ms); err != nil {
		return "write: " + err.Error(), true
	}
	return "", false
}

// sendError writes an "event: error" frame without an id, shaped like
// Wikimedia's, and counts it.
func (c *conn) sendError(message string) error {
	body, _ := json.Marshal(map[string]any{"message": message, "status": 500, "type": "emulator_fault"})
	if err := c.send(c.frame("error", "", body)); err != nil {
		return err
	}
	c.s.stats.Errors.Add(1)
	return nil
}

// pacer waits for the moment each position of one stream is due.
type pacer struct {
	ctx   context.Context
	s     *Server
	t0    time.Time
	base  time.Duration
	timer *time.Timer
}

func newPacer(ctx context.Context, s *Server, start int64) *pacer {
	p := &pacer{ctx: ctx, s: s, t0: time.Now(), base: s.offset(start), timer: time.NewTimer(0)}
	<-p.timer.C
	return p
}

func (p *pacer) stop() { p.timer.Stop() }

// sleep waits d; it reports false when the stream's context ended first.
func (p *pacer) sleep(d time.Duration) bool {
	p.timer.Reset(d)
	select {
	case <-p.timer.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// until waits until position pos is due at Speed, measured from the stream's
// first position, and, with Rebase at Speed 1 or slower, until its meta.dt (Unix
// ms, or noTime) has passed, so that no event is served before it happened. It
// reports false when the stream's context ended first.
func (p *pacer) until(pos, ms int64) bool {
	cfg := p.s.cfg
	if cfg.Speed <= 0 {
		return p.ctx.Err() == nil
	}
	at := p.t0.Add(time.Duration(float64(p.s.offset(pos)-p.base) / cfg.Speed))
	if cfg.Rebase && cfg.Speed <= 1 && ms != noTime {
		if happened := time.UnixMilli(ms + 1); happened.After(at) {
			at = happened
		}
	}
	if wait := time.Until(at); wait > 0 {
		return p.sleep(wait)
	}
	return p.ctx.Err() == nil
}

// inject writes the extra fault frames that follow the k-th event frame (position
// pos, SSE id id, event data, meta.dt ms).
func (c *conn) inject(k int, pos int64, id string, data []byte, ms int64) error {
	s, cfg := c.s, c.s.cfg
	if every(cfg.MalformedEvery, k) {
		cut := len(data) / 2
		for cut > 0 && !utf8.RuneStart(data[cut]) {
			cut--
		}
		if err := c.send(c.frame("message", id, data[:cut])); err != nil {
			return err
		}
		s.stats.Malformed.Add(1)
	}
	if every(cfg.HugeEvery, k) {
		if err := c.send(c.frame("message", id, huge(data, uuidFor("huge", pos, 0)))); err != nil {
			return err
		}
		s.stats.Huge.Add(1)
	}
	if every(cfg.CanaryEvery, k) {
		t := time.Now()
		if ms != noTime {
			t = time.UnixMilli(ms)
		}
		canary := `{"$schema":"/mediawiki/recentchange/1.0.0","meta":{"domain":"canary","dt":"` + formatDT(t, 3) +
			`","stream":"mediawiki.recentchange","id":"` + uuidFor("canary", pos, 0) + `"}}`
		if err := c.send(c.frame("message", id, []byte(canary))); err != nil {
			return err
		}
		s.stats.Canaries.Add(1)
	}
	return nil
}
