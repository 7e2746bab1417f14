package aggregate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/retry"
)

// dropApplied drops the items at or below W (applied already) and a sequence
// delivered twice, acks the highest of those at or below W that ackTarget allows
// (a cumulative ack covers the others), and returns the rest.
func (w *worker) dropApplied(items []item) []item {
	var applied []item
	keep := items[:0]
	var dups int64
	var prev uint64
	for _, it := range items {
		if it.seq <= w.wm || it.seq == prev {
			dups++
			if it.seq <= w.wm {
				applied = append(applied, it)
			}
			continue
		}
		prev = it.seq
		keep = append(keep, it)
	}
	if dups > 0 {
		w.stats.Duplicates.Add(dups)
	}
	if m := ackTarget(applied, keep); m != nil {
		w.ack(m)
	}
	return keep
}

// ackTarget returns the message of done (applied, sorted by stream sequence) to
// ack cumulatively, or nil for none, given the messages held after them. The
// server takes a cumulative ack as its floor of delivery sequences too, and from
// then on ignores the acks and naks of deliveries below that floor: a held
// message delivered before the acked one (an older delivery of a later stream
// sequence, which happens after redeliveries) would then stay pending until its
// AckWait. So the ack goes to the last message of done delivered before every
// held one; the messages of done after it are acked by a later run. In order
// (every delivery after a crash-free start), that is done's last message.
func ackTarget(done, held []item) jetstream.Msg {
	low := uint64(math.MaxUint64)
	for _, it := range held {
		low = min(low, it.cseq)
	}
	for i := len(done) - 1; i >= 0; i-- {
		if done[i].cseq < low {
			return done[i].m
		}
	}
	return nil
}

// noRun handles items of which none follows W. The message after W is
// elsewhere: in the batch the reader fetched meanwhile, or most often with
// another instance that is applying it right now. noRun takes the reader's
// batch, and waits a little (until *holdUntil) for W to move before giving these
// back, so that instances relay in order instead of scattering the stream
// between them. It reports whether items should be handled again (true), or were
// nakked (false).
func (w *worker) noRun(ctx context.Context, items *[]item, holdUntil *time.Time) bool {
	if w.takeReady(items) {
		return true
	}
	// Another instance pulls from this consumer: JetStream deals the messages out
	// one by one among outstanding pull requests, so prefetching would only
	// scatter the stream further.
	w.shared, w.streak = time.Now().Add(sharedFor), 0
	if holdUntil.IsZero() {
		*holdUntil = time.Now().Add(w.hold())
	}
	if w.waitWatermark(ctx, *holdUntil, items) {
		return true
	}
	in := *items
	w.stats.OutOfOrder.Add(int64(len(in)))
	w.log.Debug("no message follows the watermark; nakked the batch", "watermark", w.wm,
		"first", in[0].seq, "last", in[len(in)-1].seq, "messages", len(in))
	w.nak(in, nakDelay)
	w.paused(in)
	// Let the nakked messages become due before the next fetch: JetStream
	// redelivers them ahead of new messages, so the next batch starts where these
	// did instead of further on (which would not follow W either, and cost
	// another hold each time).
	retry.Sleep(ctx, nakDelay)
	return false
}

// hold is the longest handle waits, in all, for W to reach its messages.
func (w *worker) hold() time.Duration {
	return min(w.cfg.AckWait/4, maxHold)
}

// waitWatermark polls the watermark until it moves or the reader hands over a
// batch (added to items) (true), or until deadline or cancellation (false).
func (w *worker) waitWatermark(ctx context.Context, deadline time.Time, items *[]item) bool {
	poll := 5 * time.Millisecond
	for time.Now().Before(deadline) {
		if !retry.Sleep(ctx, poll) {
			return false
		}
		if w.takeReady(items) {
			return true
		}
		poll = min(2*poll, 50*time.Millisecond)
		wm, err := w.store.Watermark(ctx, w.ns, w.cfg.Consumer)
		if err != nil {
			return false
		}
		if wm > w.wm {
			w.wm = wm
			w.stats.LastSeq.Store(int64(wm))
			return true
		}
		if wm < w.wm {
			return false // Redis lost data: setup will see it
		}
	}
	return false
}

// contiguous returns how many of items (sorted, all above W) form the run that
// follows W without a gap.
func (w *worker) contiguous(ctx context.Context, items []item) (int, error) {
	p := w.wm
	for i, it := range items {
		next := it.seq == p+1
		if !next && i > 0 {
			prev := items[i-1]
			next = it.delivered == 1 && prev.delivered == 1 && it.cseq == prev.cseq+1
		}
		if !next {
			gctx, cancel := context.WithTimeout(ctx, opTimeout)
			raw, err := w.stream.GetMsg(gctx, p+1, jetstream.WithGetMsgSubject(w.cfg.FilterSubject))
			cancel()
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				w.missing = 0
				return i, nil
			case err != nil:
				return i, fmt.Errorf("get first message after %d on %s: %w", p, w.cfg.FilterSubject, err)
			}
			if raw.Sequence != it.seq {
				w.missing = raw.Sequence
				return i, nil
			}
		}
		p = it.seq
	}
	return len(items), nil
}
