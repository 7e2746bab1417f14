package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/wikiflow/wikiflow/internal/retry"
)

// run connects and reconnects until ctx is done. A connection that brings no new
// event is a failure: the delay before the next one grows exponentially (with
// jitter) up to BackoffMax, at least as long as a Retry-After asks, and resets
// only after a connection that made progress.
func (f *feed) run(ctx context.Context) {
	if f.sleep == nil {
		f.sleep = retry.Sleep
	}
	bo := retry.NewBackoff(f.in.cfg.BackoffMin, f.in.cfg.BackoffMax)
	for n := 0; ctx.Err() == nil; n++ {
		if n > 0 {
			f.in.stats.Reconnects.Add(1)
		}
		f.in.stats.Connections.Add(1)
		a := f.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		d := max(f.settle(a, bo), a.wait)
		level := slog.LevelInfo
		if !a.progress {
			level = slog.LevelWarn
		}
		f.in.log.Log(ctx, level, "feed connection ended; reconnecting", "err", a.err, "new_events", a.progress,
			"failed_in_a_row", f.failures, "retry_in", d.Round(time.Millisecond), "last_event_id", f.in.LastEventID())
		if !f.sleep(ctx, d) {
			return
		}
	}
}

// reconnectDelay returns the delay before the next connection and counts one
// more failure on bo: drawn uniformly over the upper half of bo's ceiling (and
// at least floor), so that delays double whatever the draws while clients that
// failed together still spread out.
func reconnectDelay(bo *retry.Backoff, floor time.Duration) time.Duration {
	c := bo.Ceiling()
	bo.Next()
	lo := max(c/2, floor)
	if c <= lo {
		return lo
	}
	return lo + rand.N(c-lo+1)
}

// settle records how a connection ended and returns the backoff delay before the
// next one: progress resets the backoff and the degraded state (the next
// connection follows after BackoffMin); a failure counts, backs off, and makes
// ingest degraded when the feed is unreachable or degradeAfter connections in a
// row brought nothing new.
func (f *feed) settle(a attempt, bo *retry.Backoff) time.Duration {
	st := &f.in.stats
	if a.progress {
		bo.Reset()
		if f.failures >= degradeAfter || st.Degraded() != "" {
			f.in.log.Info("the feed brings new events again", "failed_connections_before", f.failures)
		}
		f.failures = 0
		st.ConsecutiveFailures.Store(0)
		st.setDegraded("")
		return f.in.cfg.BackoffMin
	}
	f.failures++
	st.FailedConnections.Add(1)
	st.ConsecutiveFailures.Store(int64(f.failures))
	var reason string
	switch {
	case a.unreachable:
		reason = "feed unreachable: " + a.err.Error()
	case f.failures >= degradeAfter:
		reason = fmt.Sprintf("no progress at position %s after %d connections: %v", f.position(), f.failures, a.err)
	}
	if was := st.setDegraded(reason); was == "" && reason != "" {
		f.in.log.Error("ingest is degraded", "reason", reason, "position", f.position(), "failed_in_a_row", f.failures)
	}
	return reconnectDelay(bo, f.in.cfg.BackoffMin)
}

// position describes where the next connection starts: its Last-Event-ID, the
// since of a first start, or the live end.
func (f *feed) position() string {
	if id := f.in.LastEventID(); id != "" {
		return id
	}
	if f.since != "" {
		return "since=" + f.since
	}
	return "live (no position yet)"
}
