package api

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// streamRetryAfter is the Retry-After (seconds) of a /stats/stream refused at the
// client limit.
const streamRetryAfter = "5"

// streamHub shares the Redis reads of /stats/stream: the clients that ask for the
// same parameters (filters, grouping and interval) join one feed, which reads the
// figures once per interval and keeps the event to send; each client writes the
// feed's events on its own connection. The hub also bounds the clients.
type streamHub struct {
	s   *Server
	max int

	mu      sync.Mutex
	feeds   map[query]*feed
	clients int
}

func newStreamHub(s *Server, max int) *streamHub {
	return &streamHub{s: s, max: max, feeds: map[query]*feed{}}
}

// join adds a client of q, starting q's feed if it has none, or refuses it with
// a 503 when the hub holds its maximum of clients.
func (h *streamHub) join(q query) (*feed, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients >= h.max {
		return nil, &apiError{Status: fiber.StatusServiceUnavailable, Code: codeTooManyClients,
			Message: fmt.Sprintf("/stats/stream serves at most %d clients at once (stream-max-clients); retry later", h.max)}
	}
	h.clients++
	h.s.stats.StreamClients.Add(1)
	f := h.feeds[q]
	if f == nil {
		f = &feed{hub: h, q: q, changed: make(chan struct{}), stop: make(chan struct{})}
		h.feeds[q] = f
		h.s.stats.StreamFeeds.Add(1)
		go f.run()
	}
	f.subs++
	return f, nil
}

// leave removes a client of f; the feed stops with its last client.
func (h *streamHub) leave(f *feed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients--
	h.s.stats.StreamClients.Add(-1)
	if f.subs--; f.subs == 0 {
		delete(h.feeds, f.q)
		h.s.stats.StreamFeeds.Add(-1)
		close(f.stop)
	}
}

// frame is what a feed read last: the SSE event to send, numbered so that a
// client sends each change once.
type frame struct {
	seq   uint64 // grows when the figures change or Redis starts failing
	event []byte
}

// feed reads the figures of one parameter set for all its clients.
type feed struct {
	hub  *streamHub
	q    query
	subs int // guarded by hub.mu
	stop chan struct{}

	mu      sync.Mutex
	cur     *frame        // nil before the first read
	changed chan struct{} // closed (and replaced) when cur is replaced
}

// current returns the last frame (nil before the first read) and a channel closed
// when a newer one is published.
func (f *feed) current() (*frame, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur, f.changed
}

// publish makes fr the current frame, waking the clients when its sequence
// number is new.
func (f *feed) publish(fr *frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	wake := f.cur == nil || f.cur.seq != fr.seq
	f.cur = fr
	if wake {
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// run reads at once and then every interval until the feed's last client leaves
// or the server shuts down. Every read is encoded afresh (so that a client that
// joins gets a current freshness_seconds), but its sequence number changes only
// when the figures do, or when Redis starts failing (one error event per outage).
func (f *feed) run() {
	s := f.hub.s
	tick := time.NewTicker(f.q.interval)
	defer tick.Stop()
	var (
		seq     uint64
		last    []byte
		failing bool
	)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RedisTimeout)
		r, err := s.computeStats(ctx, &f.q)
		cancel()
		s.stats.StreamReads.Add(1)
		now := time.Now()
		switch {
		case err != nil:
			if !failing {
				failing = true
				seq++
				s.logLimited("stream: read stats", err)
				f.publish(&frame{seq: seq, event: eventBytes(sse.Event{Type: "error", Data: appendError(nil, toAPIError(err))})})
			}
		default:
			fp := r.appendJSON(nil, now, false)
			if failing || !bytes.Equal(fp, last) {
				failing, last = false, fp
				seq++
			}
			ev := sse.Event{Type: "stats", Data: r.appendJSON(make([]byte, 0, len(fp)+64), now, true)}
			if !r.meta.AsOf.IsZero() {
				ev.ID = strconv.FormatInt(r.meta.AsOf.UnixMilli(), 10)
			}
			f.publish(&frame{seq: seq, event: eventBytes(ev)})
		}
		select {
		case <-f.stop:
			return
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

func eventBytes(ev sse.Event) []byte {
	var b bytes.Buffer
	sse.AppendEvent(&b, ev)
	return b.Bytes()
}
