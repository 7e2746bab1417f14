package api

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// keepAliveEvery is how often /stats/stream sends a comment when nothing changed.
const keepAliveEvery = 15 * time.Second

// handleStream serves GET /stats/stream: Server-Sent Events carrying the /stats
// body whenever its figures change.
func (s *Server) handleStream(c *fiber.Ctx) error {
	q, err := parseQuery(c, &streamSpec)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	if c.Method() == fiber.MethodHead {
		// The headers only: a body stream writer would still write the chunked
		// encoding's end after them, which corrupts the connection's next response.
		return nil
	}
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) { s.stream(w, q) })
	return nil
}

// stream writes events to w until the client goes away (a write or flush fails,
// which the keep-alive comments make happen at the latest two of them after the
// client left) or the server shuts down.
func (s *Server) stream(w *bufio.Writer, q query) {
	s.stats.StreamClients.Add(1)
	defer s.stats.StreamClients.Add(-1)
	tick := time.NewTicker(q.interval)
	defer tick.Stop()
	var last []byte
	lastWrite := time.Now()
	failing := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
		r, err := s.computeStats(ctx, &q)
		cancel()
		now := time.Now()
		wrote := false
		switch {
		case err != nil:
			if !failing {
				failing = true
				s.logLimited("stream: read stats", err)
				ev := sse.Event{Type: "error", Data: appendError(nil, toAPIError(err))}
				if sse.WriteEvent(w, ev) != nil {
					return
				}
				wrote = true
			}
		default:
			failing = false
			fp := r.appendJSON(nil, now, false)
			if !bytes.Equal(fp, last) {
				last = fp
				ev := sse.Event{Type: "stats", Data: r.appendJSON(make([]byte, 0, len(fp)+64), now, true)}
				if r.meta.hasAsOf {
					ev.ID = strconv.FormatInt(r.meta.asOfMs, 10)
				}
				if sse.WriteEvent(w, ev) != nil {
					return
				}
				s.stats.StreamEvents.Add(1)
				wrote = true
			}
		}
		if !wrote && now.Sub(lastWrite) >= s.keepAlive {
			if sse.WriteComment(w, " keep-alive") != nil {
				return
			}
			wrote = true
		}
		if wrote {
			if w.Flush() != nil {
				return
			}
			lastWrite = now
		}
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}
