package ingest

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff computes reconnection and retry delays: the ceiling doubles from min with
// every failure up to max, and each delay is drawn uniformly between min and the
// ceiling (full jitter above a floor, so that clients that failed together do not
// retry together and a failing server is never hammered).
type backoff struct {
	min, max time.Duration
	failures int
}

func newBackoff(min, max time.Duration) *backoff {
	if max < min {
		max = min
	}
	return &backoff{min: min, max: max}
}

// ceiling returns the largest delay the next call to next may return.
func (b *backoff) ceiling() time.Duration {
	c := b.min
	for i := 0; i < b.failures && c < b.max; i++ {
		c *= 2
	}
	return min(c, b.max)
}

// next returns the delay before the next attempt and counts one more failure.
func (b *backoff) next() time.Duration {
	c := b.ceiling()
	b.failures++
	if c <= b.min {
		return b.min
	}
	return b.min + rand.N(c-b.min+1)
}

// reset forgets the failures, after a healthy connection or a successful write.
func (b *backoff) reset() { b.failures = 0 }

// sleep waits d or until ctx is done; it reports whether the whole delay passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
