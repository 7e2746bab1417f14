// Package retry holds the waiting that every stage does between attempts: a
// cancellable sleep, an exponential backoff (with or without jitter) and Do, the
// loop that retries an operation with them.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits d or until ctx is done; it reports whether the whole delay passed.
func Sleep(ctx context.Context, d time.Duration) bool {
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

// Backoff computes reconnection and retry delays: the ceiling doubles from Min
// with every failure up to Max, and each delay is drawn uniformly between Min and
// the ceiling (full jitter above a floor, so that clients that failed together do
// not retry together and a failing server is never hammered). The zero value is
// not usable; use NewBackoff or NewDoubling.
type Backoff struct {
	min, max time.Duration
	failures int
	steady   bool // no jitter: every delay is the ceiling
}

// NewBackoff returns a Backoff between min and max (max below min means min).
func NewBackoff(min, max time.Duration) *Backoff {
	if max < min {
		max = min
	}
	return &Backoff{min: min, max: max}
}

// NewDoubling returns a Backoff without jitter between min and max: its delays
// are min, 2×min, 4×min… up to max. It suits a single client whose retries
// cannot fall in step with others' (max below min means min).
func NewDoubling(min, max time.Duration) *Backoff {
	b := NewBackoff(min, max)
	b.steady = true
	return b
}

// Ceiling returns the largest delay the next call to Next may return.
func (b *Backoff) Ceiling() time.Duration {
	c := b.min
	for i := 0; i < b.failures && c < b.max; i++ {
		c *= 2
	}
	return min(c, b.max)
}

// Next returns the delay before the next attempt and counts one more failure.
func (b *Backoff) Next() time.Duration {
	c := b.Ceiling()
	b.failures++
	if b.steady || c <= b.min {
		return c
	}
	return b.min + rand.N(c-b.min+1)
}

// Reset forgets the failures, after a healthy connection or a successful write.
func (b *Backoff) Reset() { b.failures = 0 }
