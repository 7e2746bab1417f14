package aggregate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// handle applies what of items (one fetch) follows the watermark.
func (w *worker) handle(ctx context.Context, items []item) error {
	sortItems(items)
	var holdUntil time.Time
	for {
		if w.nc.Stats().Reconnects != w.conns {
			// The server may have restarted having lost its tail: check the
			// watermark against the stream again before trusting any sequence.
			w.nak(items, 0)
			return errResetup
		}
		if items = w.dropApplied(items); len(items) == 0 {
			return nil
		}

		n, err := w.contiguous(ctx, items)
		if err != nil {
			w.nak(items, 0)
			return err
		}
		if n == 0 {
			if w.noRun(ctx, &items, &holdUntil) {
				continue
			}
			// Stuck: resynchronise namespace, watermark and consumer (a rebuild
			// may have switched the namespace, Redis lost data, or the message
			// after W is lost in the consumer's redeliveries).
			return errResetup
		}
		run, rest := items[:n], items[n:]

		last := run[len(run)-1].seq
		res, err := w.apply(ctx, run, items)
		if err != nil {
			// Cancelled while Redis was unavailable: nothing applied, nothing acked.
			w.nak(items, 0)
			return err
		}
		switch res.Status {
		case projection.Applied:
			if holdUntil.IsZero() {
				w.streak++
			}
			w.resumed(last)
			w.wm = last
			w.writeStamp(ctx, run[len(run)-1])
			w.stats.LastSeq.Store(int64(last))
			if w.afterApply != nil {
				if err := w.afterApply(last); err != nil {
					return fmt.Errorf("%w: %v", errHook, err)
				}
			}
			if m := ackTarget(run, rest); m != nil {
				w.ack(m)
			}
			// What is left starts after a gap: handled like a new batch.
			items = rest
		case projection.Conflict:
			w.stats.CASConflicts.Add(1)
			w.shared, w.streak = time.Now().Add(sharedFor), 0
			if res.Watermark < w.wm {
				w.log.Warn("watermark in Redis went backwards: Redis lost data",
					"namespace", w.ns, "watermark", res.Watermark, "expected", w.wm)
				w.nak(items, 0)
				return errResetup
			}
			w.log.Debug("watermark moved by another instance", "from", w.wm, "to", res.Watermark)
			w.wm = res.Watermark
			w.stats.LastSeq.Store(int64(res.Watermark))
		case projection.Stale:
			w.log.Info("projection namespace is no longer current", "namespace", w.ns, "current", res.Current)
			w.nak(items, 0)
			return errResetup
		default:
			return fmt.Errorf("apply: unexpected status %v", res.Status)
		}
	}
}

// errHook marks the test hook's simulated crash.
var errHook = errors.New("after-apply hook")

// apply sums run into the delta and applies it, retrying while Redis is
// unavailable; it returns an error only when ctx is cancelled meanwhile. held
// (every message in hand) is kept in progress during retries.
func (w *worker) apply(ctx context.Context, run, held []item) (projection.ApplyResult, error) {
	d := w.delta
	invalid, canaries := w.sum(d, run)
	last := run[len(run)-1]
	var res projection.ApplyResult
	retried := false
	err := retry.Do(ctx, retry.NewDoubling(minBackoff, maxBackoff), func() error {
		if retried {
			for _, it := range held {
				_ = it.m.InProgress()
			}
		}
		retried = true
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		start := time.Now()
		var err error
		if res, err = w.store.Apply(actx, w.ns, w.cfg.Consumer, w.wm, last.seq, d); err != nil {
			return err
		}
		w.healthy("redis apply")
		took := time.Since(start)
		w.stats.ApplyNanos.Add(int64(took))
		w.stats.ApplyCount.Add(1)
		w.applyDuration.Observe(took.Seconds())
		return nil
	}, func(err error, _ time.Duration) { w.failed("redis apply", err) })
	if err != nil {
		return res, err
	}
	if res.Status == projection.Applied {
		w.stats.Batches.Add(1)
		w.stats.Applied.Add(int64(d.Len()))
		w.stats.Invalid.Add(invalid)
		w.stats.Canaries.Add(canaries)
		w.freshness(run)
	}
	return res, nil
}

// sum resets d to the events of run and returns how many of its messages failed
// to parse (each logged) and how many were canaries.
func (w *worker) sum(d *projection.Delta, run []item) (invalid, canaries int64) {
	d.Reset()
	d.FirstSeq = run[0].seq
	for i := range run {
		it := &run[i]
		switch {
		case errors.Is(it.perr, event.ErrCanary):
			canaries++
		case it.perr != nil:
			invalid++
			w.log.Warn("event dropped: cannot parse", "seq", it.seq, "subject", it.m.Subject(), "err", it.perr)
		default:
			d.Add(&it.ev)
		}
	}
	return invalid, canaries
}

// freshness records now minus the receive time of the run's newest message.
func (w *worker) freshness(run []item) {
	var newest int64
	for _, it := range run {
		h := it.m.Headers()
		if h == nil {
			continue
		}
		if v, err := strconv.ParseInt(h.Get(wire.HeaderNATSReceived), 10, 64); err == nil && v > newest {
			newest = v
		}
	}
	if newest > 0 {
		w.stats.FreshnessNanos.Store(time.Now().UnixNano() - newest)
	}
}
