package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// writePiece bounds one write into the response body, so that the body pipe
// between the stream writer and the connection holds at most a few of them.
const writePiece = 16 << 10

// keepSpare is the largest buffer a client keeps between writes.
const keepSpare = 16 << 10

// errSlowClient ends a producer whose client did not make room in time.
var errSlowClient = errors.New("client too slow")

// errQueueClosed ends a producer whose stream has already ended.
var errQueueClosed = errors.New("stream ended")

// sendQueue is one client's bounded send buffer. The producer appends frames
// (push waits, at most the stall time, while the buffer is full); the writer
// takes everything at once and hands its previous buffer back as the spare, so a
// client never holds more than two buffers.
type sendQueue struct {
	limit int
	ready chan struct{} // a token: frames or a failure are waiting
	half  chan struct{} // a token: the frames fill half the buffer, or a failure waits
	room  chan struct{} // a token: the writer took the frames

	mu     sync.Mutex
	buf    []byte
	frames int
	failed *apiError // why the stream ends, sent as a last error event
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, ready: make(chan struct{}, 1), half: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push appends one frame. A frame larger than the whole buffer is accepted into
// an empty one. It returns errSlowClient when the buffer stayed full for stall,
// and errQueueClosed when the stream failed or done was closed.
func (q *sendQueue) push(frame []byte, stall time.Duration, done <-chan struct{}) error {
	var timeout <-chan time.Time
	for {
		q.mu.Lock()
		if q.failed != nil {
			q.mu.Unlock()
			return errQueueClosed
		}
		if len(q.buf) == 0 || len(q.buf)+len(frame) <= q.limit {
			q.buf = append(q.buf, frame...)
			q.frames++
			half := len(q.buf) >= q.limit/2
			q.mu.Unlock()
			signal(q.ready)
			if half {
				signal(q.half)
			}
			return nil
		}
		q.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(stall)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-q.room:
		case <-timeout:
			return errSlowClient
		case <-done:
			return errQueueClosed
		}
	}
}

// pending returns the bytes waiting, and whether the stream failed.
func (q *sendQueue) pending() (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf), q.failed != nil
}

// take returns the waiting frames, their number and the failure, if any, and
// keeps spare (emptied) as the next buffer.
func (q *sendQueue) take(spare []byte) (frames []byte, n int, failed *apiError) {
	if cap(spare) > keepSpare {
		spare = nil // do not keep the room a burst needed: idle clients stay small
	}
	q.mu.Lock()
	frames, n, failed = q.buf, q.frames, q.failed
	q.buf, q.frames = spare[:0], 0
	q.mu.Unlock()
	signal(q.room)
	return frames, n, failed
}

// fail ends the stream: the frames not yet taken are dropped and the writer
// sends e as the last event.
func (q *sendQueue) fail(e *apiError) {
	q.mu.Lock()
	if q.failed == nil {
		q.failed = e
		q.buf, q.frames = q.buf[:0], 0
	}
	q.mu.Unlock()
	signal(q.ready)
	signal(q.half)
}

// appendMessage appends the frame of the event at seq, laid out like
// Wikimedia's: event, id, one data line, blank line. Data spread over several
// lines is compacted to one (the log keeps the raw bytes); data that is not JSON
// and holds line breaks (CR, LF or CRLF) goes on several data lines, which SSE
// clients join with "\n". It reports whether the data had to be rewritten.
func appendMessage(b []byte, stream string, seq uint64, data []byte) ([]byte, bool) {
	var idBuf [128]byte
	id := appendEventID(idBuf[:0], stream, seq)
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		return sse.AppendFrame(b, "message", id, data, "\n"), false
	}
	var one bytes.Buffer
	if json.Compact(&one, data) == nil {
		return sse.AppendFrame(b, "message", id, one.Bytes(), "\n"), true
	}
	lf := bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	return sse.AppendFrame(b, "message", id, lf, "\n"), true
}

// appendErrorEvent appends the last event of a stream that the server ends: an
// "error" event whose data is the API's error body.
func appendErrorEvent(b []byte, e *apiError) []byte {
	return sse.AppendFrame(b, "error", "", appendError(nil, e), "\n")
}

// writePieces writes b in pieces of at most writePiece bytes.
func writePieces(w *bufio.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writePiece)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
