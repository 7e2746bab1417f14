package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// conn reads the frames of one connection.
type conn struct {
	f    *feed
	body *idleReader
	rd   *sse.Reader
	// sinceMs is the since this connection asked for (Unix ms), until its first
	// event is checked for a gap; 0 when it resumed or started live.
	sinceMs     int64
	progress    bool
	errorFrames int
	lastError   string
}

// read handles frames until the stream ends.
func (c *conn) read(ctx context.Context, idle *atomic.Bool) attempt {
	for {
		start := c.body.n
		ev, err := c.rd.Next()
		if err != nil {
			return c.end(ctx, idle.Load(), err)
		}
		switch ev.Type {
		case "message":
			published, t := c.f.message(ev, c.body.n-start)
			c.progress = c.progress || published
			if c.sinceMs > 0 && !t.IsZero() {
				c.f.checkGap(c.sinceMs, t)
				c.sinceMs = 0
			}
		case "error":
			c.errorFrame(ev)
		default:
			c.f.in.log.Debug("ignoring frame", "event", ev.Type, "bytes", len(ev.Data))
		}
	}
}

// errorFrame counts an "event: error" frame and logs the first few of the
// connection; the stream is read on as long as the server keeps it open.
func (c *conn) errorFrame(ev sse.Event) {
	c.f.in.stats.ErrorFrames.Add(1)
	c.errorFrames++
	c.lastError = clip(ev.Data, 300)
	log := c.f.in.log
	switch {
	case c.errorFrames <= loggedErrorFrames:
		log.Warn("feed sent an error frame; reading on", "data", clip(ev.Data, 500), "last_event_id", c.f.in.LastEventID())
	case c.errorFrames == loggedErrorFrames+1:
		log.Warn("feed keeps sending error frames; further ones on this connection are only counted", "error_frames", c.errorFrames)
	}
}

// end describes how the stream ended after Next returned err.
func (c *conn) end(ctx context.Context, idle bool, err error) attempt {
	st, cfg := &c.f.in.stats, c.f.in.cfg
	switch {
	case ctx.Err() != nil:
		return attempt{progress: c.progress, err: ctx.Err()}
	case idle:
		st.IdleTimeouts.Add(1)
		err = fmt.Errorf("feed silent for %s (it sends no heartbeat)", cfg.IdleTimeout)
	case errors.Is(err, sse.ErrTruncated):
		st.Truncated.Add(1)
		err = errors.New("stream ended inside a frame; the frame will be fetched again")
	case errors.Is(err, io.EOF):
		err = errors.New("server closed the stream")
	default:
		err = fmt.Errorf("read stream: %w", err)
	}
	switch {
	case c.progress:
	case c.errorFrames > 0:
		err = fmt.Errorf("%w; no new event, %d error frames (last: %s)", err, c.errorFrames, c.lastError)
	default:
		err = fmt.Errorf("%w; no new event", err)
	}
	return attempt{progress: c.progress, err: err}
}

// checkGap reports a start from since whose first event came much later: the
// feed no longer held that history (Wikimedia starts at the end, without saying
// so, when since is older than its retention), and those events are lost.
func (f *feed) checkGap(sinceMs int64, first time.Time) {
	since := time.UnixMilli(sinceMs)
	missing := first.Sub(since)
	if missing <= gapTolerance {
		return
	}
	f.in.stats.Gaps.Add(1)
	f.in.stats.GapSeconds.Add(int64(missing / time.Second))
	f.in.log.Warn("gap: the feed started later than the since asked for; the events in between were not served (older than the feed keeps?)",
		"since", since.UTC().Format(time.RFC3339), "first_event", first.UTC().Format(time.RFC3339), "missing", missing.Round(time.Second).String())
}
