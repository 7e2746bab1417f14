package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
)

// eventClient is one connected client of the event stream: a producer goroutine
// moves matching events from its consumer into its send queue, and the
// response's stream writer sends them, with heartbeats while there are none.
type eventClient struct {
	hub    *eventHub
	st     jetstream.Stream
	cons   jetstream.Consumer
	msgs   jetstream.MessagesContext
	filter eventFilter
	queue  *sendQueue
	conn   net.Conn // the client's connection, cut when it is dropped
	remote string

	ctx    context.Context // ends the producer
	cancel context.CancelFunc

	lastSeq atomic.Uint64 // stream sequence of the last event queued
}

// serve is the response's body writer: it runs until the client leaves, is
// dropped, the log fails or the server shuts down, then frees the consumer
// and the connection slot.
func (cl *eventClient) serve(w *bufio.Writer) {
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		cl.produce()
	}()
	defer func() {
		cl.cancel()
		cl.msgs.Stop()
		<-produced
		deleteConsumer(cl.st, cl.cons)
		cl.hub.release()
	}()
	if cl.conn != nil {
		go cl.watch()
	}
	if _, err := w.WriteString(":ok\n\n"); err != nil || w.Flush() != nil {
		return
	}
	cl.write(w)
}

// watch ends the stream as soon as the client closes its connection, rather
// than at the next failed write (up to three heartbeats later, through the
// response's body pipe). Nothing else reads the connection during the stream,
// and the response closes it (Connection: close), which ends watch too.
func (cl *eventClient) watch() {
	var b [1]byte
	for {
		_, err := cl.conn.Read(b[:])
		if err == nil {
			continue // a client may not send more; what it sends is ignored
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && cl.ctx.Err() == nil {
			// The server's read deadline for the request is still set.
			if cl.conn.SetReadDeadline(time.Time{}) == nil {
				continue
			}
		}
		cl.cancel()
		return
	}
}

// write sends what the queue holds as it comes (at most one write per
// flushGap unless the queue fills), a heartbeat comment after each
// Config.Events.Heartbeat without anything to send, and the queue's failure as
// the last event.
func (cl *eventClient) write(w *bufio.Writer) {
	beat := time.NewTimer(cl.hub.cfg.Events.Heartbeat)
	defer beat.Stop()
	var spare []byte
	var flushed time.Time
	for {
		select {
		case <-cl.queue.ready:
			if n, failed := cl.queue.pending(); n == 0 && !failed {
				continue // a token left from frames already taken
			}
			if !cl.gather(flushed) {
				return
			}
			flushed = time.Now()
			frames, n, failed := cl.queue.take(spare)
			if writePieces(w, frames) != nil {
				return
			}
			spare = frames
			cl.hub.stats.Events.Add(int64(n))
			if failed != nil {
				_, _ = w.Write(appendErrorEvent(nil, failed))
				_ = w.Flush()
				return
			}
		case <-beat.C:
			if _, err := w.WriteString(": heartbeat\n\n"); err != nil {
				return
			}
		case <-cl.hub.done:
			return
		case <-cl.ctx.Done():
			return
		}
		if w.Flush() != nil {
			return
		}
		beat.Reset(cl.hub.cfg.Events.Heartbeat)
	}
}

// gather lets events gather in the queue until flushGap has passed since the
// last write or the queue is half full (a client catching up is not slowed
// down). It reports false when the stream ends meanwhile.
func (cl *eventClient) gather(last time.Time) bool {
	wait := flushGap - time.Since(last)
	if n, failed := cl.queue.pending(); wait <= 0 || failed || n >= cl.queue.limit/2 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-cl.queue.half:
	case <-cl.hub.done:
		return false
	case <-cl.ctx.Done():
		return false
	}
	return true
}

// produce queues the matching events until the client's context ends, the
// client is too slow, or the log fails.
func (cl *eventClient) produce() {
	cfg := &cl.hub.cfg
	fields := cl.filter.fields()
	var frame []byte
	for {
		msg, err := cl.msgs.Next(jetstream.NextContext(cl.ctx))
		if err != nil {
			if cl.ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				cl.hub.stats.Failed.Add(1)
				cl.hub.log.Warn("event stream: the log stopped delivering; ending the stream", "client", cl.remote, "last_seq", cl.lastSeq.Load(), "err", err)
				cl.queue.fail(&apiError{Status: fiber.StatusServiceUnavailable, Code: codeUnavailable,
					Message: "the event log stopped delivering (" + err.Error() + "); reconnect with Last-Event-ID to resume"})
			}
			return
		}
		md, err := msg.Metadata()
		if err != nil {
			cl.hub.stats.Unparsable.Add(1)
			continue
		}
		if fields {
			ev, err := event.Parse(msg.Data())
			if err != nil {
				if !errors.Is(err, event.ErrCanary) {
					cl.hub.stats.Unparsable.Add(1)
				}
				continue
			}
			if !cl.filter.match(&ev) {
				continue
			}
		}
		var rewritten bool
		frame, rewritten = appendMessage(frame[:0], cfg.Events.Stream, md.Sequence.Stream, msg.Data())
		if rewritten {
			cl.hub.stats.Rewritten.Add(1)
		}
		switch err := cl.queue.push(frame, cfg.Events.Stall, cl.ctx.Done()); {
		case errors.Is(err, errSlowClient):
			cl.drop()
			return
		case err != nil:
			return
		}
		cl.lastSeq.Store(md.Sequence.Stream)
	}
}

// drop ends the stream of a client that left its send buffer full for the
// stall time: the frames it has not taken are dropped, an "error" event says
// why, and the connection is cut if it does not take even that within dropGrace.
func (cl *eventClient) drop() {
	h := cl.hub
	h.stats.DroppedSlow.Add(1)
	h.log.Warn("event stream: dropping a client that reads too slowly", "client", cl.remote,
		"buffer_bytes", h.cfg.Events.Buffer, "stall", h.cfg.Events.Stall, "last_seq", cl.lastSeq.Load())
	cl.queue.fail(&apiError{Status: fiber.StatusTooManyRequests, Code: codeSlowClient,
		Message: fmt.Sprintf("this client read too slowly: its %d-byte send buffer stayed full for %s; reconnect with Last-Event-ID to resume after the last event received",
			h.cfg.Events.Buffer, h.cfg.Events.Stall)})
	if cl.conn != nil {
		_ = cl.conn.SetWriteDeadline(time.Now().Add(dropGrace))
	}
}
