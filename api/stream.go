package api

import (
	"bufio"
	"time"

	"github.com/gofiber/fiber/v2"
)

// keepAliveEvery is how often /stats/stream sends a heartbeat comment when it
// sent nothing else: the only way to notice a client that left, since a write
// failing is the only sign of it.
const keepAliveEvery = 15 * time.Second

// heartbeat is the comment sent by /stats/stream; its blank line ends it, so that
// a client reading by blocks sees it at once.
const heartbeat = ": keep-alive\n\n"

// handleStream serves GET /stats/stream: Server-Sent Events carrying the /stats
// body whenever its figures change, read once per interval for all the clients
// of the same parameters (see streamHub).
func (s *Server) handleStream(c *fiber.Ctx) error {
	q, err := parseQuery(c, &streamSpec)
	if err != nil {
		return err
	}
	if c.Method() == fiber.MethodHead {
		// The headers only: a body stream writer would still write the chunked
		// encoding's end after them, which corrupts the connection's next response.
		setStreamHeaders(c)
		return nil
	}
	f, err := s.hub.join(q)
	if err != nil {
		s.stats.StreamRefused.Add(1)
		s.logRefused()
		c.Set(fiber.HeaderRetryAfter, streamRetryAfter)
		return err
	}
	setStreamHeaders(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.hub.leave(f)
		s.stream(w, f)
	})
	return nil
}

func setStreamHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
}

// stream writes f's events to w until the client goes away (a write or flush
// fails, at the latest at the second heartbeat after it left) or the server
// shuts down.
func (s *Server) stream(w *bufio.Writer, f *feed) {
	var sent uint64 // sequence number of the last frame sent; frames start at 1
	idle := time.NewTimer(s.keepAlive)
	defer idle.Stop()
	for {
		fr, changed := f.current()
		if fr != nil && fr.seq != sent {
			if _, err := w.Write(fr.event); err != nil || w.Flush() != nil {
				return
			}
			sent = fr.seq
			s.stats.StreamEvents.Add(1)
			idle.Reset(s.keepAlive)
		}
		select {
		case <-changed:
		case <-idle.C:
			if _, err := w.WriteString(heartbeat); err != nil || w.Flush() != nil {
				return
			}
			idle.Reset(s.keepAlive)
		case <-s.done:
			return
		}
	}
}

// logRefused logs a client refused at the limit, at most once every 5 s.
func (s *Server) logRefused() {
	if !logDue(&s.lastRefusedLog) {
		return
	}
	s.log.Warn("/stats/stream at its client limit: refusing clients", "limit", s.cfg.StreamMaxClients, "refused_total", s.stats.StreamRefused.Load())
}
