package retry

import (
	"context"
	"errors"
	"time"
)

// stop marks an error that no attempt will cure.
type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }
func (s stop) Unwrap() error { return s.err }

// Stop marks err as final: Do returns it (unmarked) at once instead of retrying.
// Stop(nil) is nil.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return stop{err}
}

// Do calls op until it succeeds, returns an error marked with Stop, or ctx ends.
// After each other failure it calls onErr with the error and the delay b gives
// before the next attempt, so that every retry is logged or counted, and then
// waits that delay. It returns nil once op succeeds (and resets b), the error
// given to Stop, or ctx.Err() when ctx ends during a wait.
func Do(ctx context.Context, b *Backoff, op func() error, onErr func(err error, wait time.Duration)) error {
	for {
		err := op()
		if err == nil {
			b.Reset()
			return nil
		}
		var s stop
		if errors.As(err, &s) {
			return s.err
		}
		d := b.Next()
		if onErr != nil {
			onErr(err, d)
		}
		if !Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}
