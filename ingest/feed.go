package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/sse"
	"github.com/wikiflow/wikiflow/internal/wire"
)

const (
	// maxRetryAfter caps how long a Retry-After header can make ingest wait.
	maxRetryAfter = 10 * time.Minute
	// degradeAfter is how many connections in a row without a new event make
	// ingest report itself degraded (an unreachable feed does at once).
	degradeAfter = 3
	// gapTolerance is how much later than the asked-for since the first event
	// may be before ingest reports the span in between as a gap.
	gapTolerance = time.Minute
	// loggedErrorFrames is how many error frames of one connection are logged;
	// later ones are only counted.
	loggedErrorFrames = 3
)

// feed is the connection loop: one goroutine reading the EventStreams feed, one
// connection at a time.
type feed struct {
	in    *Ingester
	out   chan<- item
	seen  *recentIDs
	since string // ?since= value used until the first event is read
	// sleep waits between connections (retry.Sleep; tests pass a fake clock).
	sleep func(context.Context, time.Duration) bool
	// failures counts the connections in a row that brought no new event.
	failures int
}

// attempt is how one connection ended.
type attempt struct {
	// progress is set when the connection brought at least one new event (not a
	// duplicate): only that resets the backoff.
	progress bool
	// unreachable is set when the feed's host could not be reached at all.
	unreachable bool
	// wait is a delay the server asked for (Retry-After).
	wait time.Duration
	// err says why the connection ended.
	err error
}

// request builds the GET request of one connection.
func (f *feed) request(ctx context.Context) (*http.Request, error) {
	u, err := url.Parse(f.in.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", f.in.cfg.URL, err)
	}
	lastID := f.in.LastEventID()
	if lastID == "" && f.since != "" {
		q := u.Query()
		q.Set("since", f.since)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u, err)
	}
	req.Header.Set("User-Agent", f.in.agent)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return req, nil
}

// connect runs one connection: request, status check, then frames until the
// stream ends, goes silent for IdleTimeout, or ctx is done. Error frames are
// logged and counted, and the stream is read on.
func (f *feed) connect(ctx context.Context) attempt {
	cfg := f.in.cfg
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	timer := time.AfterFunc(cfg.IdleTimeout, func() {
		idle.Store(true)
		cancel()
	})
	defer timer.Stop()

	req, err := f.request(cctx)
	if err != nil {
		return attempt{err: err}
	}
	resp, err := f.in.http.Do(req)
	if err != nil {
		f.in.stats.HTTPErrors.Add(1)
		if idle.Load() {
			f.in.stats.IdleTimeouts.Add(1)
			return attempt{err: fmt.Errorf("no response from %s within %s", req.URL.Host, cfg.IdleTimeout)}
		}
		err, unreachable := describeNetError(req.URL.Host, err)
		return attempt{err: err, unreachable: unreachable}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.in.stats.HTTPErrors.Add(1)
		return statusAttempt(resp, time.Now())
	}
	f.in.log.Info("connected to the feed", "url", req.URL.Redacted(), "last_event_id", req.Header.Get("Last-Event-ID"))

	c := &conn{f: f, body: &idleReader{r: resp.Body, timer: timer, idle: cfg.IdleTimeout}}
	if req.Header.Get("Last-Event-ID") == "" && f.since != "" {
		c.sinceMs, _ = strconv.ParseInt(f.since, 10, 64)
	}
	c.rd = sse.NewReader(c.body, cfg.MaxEventSize+lineSlack)
	c.rd.SetLastID(f.in.LastEventID())
	return c.read(ctx, &idle)
}

// message handles one "message" frame; frameBytes is how many stream bytes it took
// (within the reader's buffer size). It reports whether a new event was queued for
// the events topic, and the event's meta.dt when it parsed. Every frame but a
// duplicate moves the position on; a duplicate lies at or before it.
func (f *feed) message(ev sse.Event, frameBytes int64) (published bool, t time.Time) {
	st := &f.in.stats
	now := time.Now()
	st.Frames.Add(1)
	st.Bytes.Add(int64(len(ev.Data)))
	st.LastReceived.Store(now.UnixNano())
	received := []byte(strconv.FormatInt(now.UnixNano(), 10))

	limit := f.in.cfg.MaxEventSize
	if ev.Oversize || len(ev.Data) > limit {
		size := strconv.Itoa(len(ev.Data))
		if ev.Oversize {
			size = "~" + strconv.FormatInt(frameBytes, 10)
		}
		reason := fmt.Sprintf("oversize: event of %s bytes exceeds the limit of %d bytes", size, limit)
		f.deadLetter(ev, classOversize, reason, now, kafka.Header{Key: HeaderOriginalSize, Value: []byte(size)})
		f.in.setLastID(ev.ID)
		return false, time.Time{}
	}
	e, err := event.ParseLimit(ev.Data, 0)
	switch {
	case errors.Is(err, event.ErrCanary):
		st.Canaries.Add(1)
		f.in.log.Debug("dropped a canary event", "sse_id", ev.ID)
		f.in.setLastID(ev.ID)
		return false, time.Time{}
	case err != nil:
		f.deadLetter(ev, classInvalid, err.Error(), now)
		f.in.setLastID(ev.ID)
		return false, time.Time{}
	}
	st.LastEventTime.Store(e.Time.UnixMilli())
	if !f.seen.add(e.ID) {
		st.Duplicates.Add(1)
		f.in.log.Debug("skipped a duplicate event", "meta_id", e.ID, "sse_id", ev.ID)
		return false, e.Time
	}
	f.out <- item{sseID: ev.ID, msg: kafka.Message{
		Key:   []byte(e.Wiki),
		Value: ev.Data,
		Time:  now,
		Headers: []kafka.Header{
			{Key: wire.HeaderSSEID, Value: []byte(ev.ID)},
			{Key: wire.HeaderMetaID, Value: []byte(e.ID)},
			{Key: wire.HeaderSubject, Value: event.AppendSubject(nil, wire.SubjectPrefix, e.Wiki, e.Type)},
			{Key: wire.HeaderReceived, Value: received},
		},
	}}
	f.in.setLastID(ev.ID)
	return true, e.Time
}

// deadLetter queues a rejected frame for the dead-letter topic.
func (f *feed) deadLetter(ev sse.Event, class, reason string, received time.Time, extra ...kafka.Header) {
	value := ev.Data
	if len(value) > f.in.cfg.MaxEventSize {
		value = value[:f.in.cfg.MaxEventSize]
	}
	f.in.log.Warn("dead-lettering a frame", "reason", reason, "sse_id", ev.ID, "bytes", len(ev.Data))
	headers := append([]kafka.Header{
		{Key: wire.HeaderReason, Value: []byte(reason)},
		{Key: wire.HeaderSSEID, Value: []byte(ev.ID)},
		{Key: wire.HeaderReceived, Value: []byte(strconv.FormatInt(received.UnixNano(), 10))},
	}, extra...)
	f.out <- item{sseID: ev.ID, class: class, msg: kafka.Message{
		Key: []byte(deadLetterKey), Value: value, Headers: headers, Time: received,
	}}
}

// statusAttempt describes a non-200 response.
func statusAttempt(resp *http.Response, now time.Time) attempt {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	detail := fmt.Sprintf("HTTP %s", resp.Status)
	if len(body) > 0 {
		detail += ": " + clip(body, 300)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return attempt{err: fmt.Errorf("%s (Wikimedia refuses clients whose User-Agent lacks a contact, see --contact)", detail)}
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := retryAfter(resp.Header.Get("Retry-After"), now)
		return attempt{wait: wait, err: fmt.Errorf("%s (too many connections from this address; waiting %s as asked)", detail, wait)}
	case resp.StatusCode >= 500:
		return attempt{wait: retryAfter(resp.Header.Get("Retry-After"), now), err: fmt.Errorf("%s (server error)", detail)}
	default:
		return attempt{err: errors.New(detail)}
	}
}

// retryAfter parses a Retry-After value (seconds or an HTTP date), capped at
// maxRetryAfter; 0 when absent or invalid.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// describeNetError explains a failed request, pointing at the offline sample
// source when the host cannot be reached at all (unreachable is then set).
func describeNetError(host string, err error) (described error, unreachable bool) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || (errors.As(err, &opErr) && opErr.Op == "dial") {
		return fmt.Errorf("cannot reach %s: %w — offline? use SOURCE=sample", host, err), true
	}
	return fmt.Errorf("request to %s: %w", host, err), false
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// idleReader counts the bytes read and pushes the idle deadline back whenever
// some arrive.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
	n     int64
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.n += int64(n)
		r.timer.Reset(r.idle)
	}
	return n, err
}
