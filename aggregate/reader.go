package aggregate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
)

// fetched is one fetch's messages, parsed, and the error that ended the fetch.
type fetched struct {
	items []item
	err   error
}

// loop handles batches until ctx is cancelled (nil) or an error asks for setup
// again. A reader goroutine fetches and parses the next batch while the current
// one is applied and acked; whatever it read but the loop did not handle is nakked
// when the loop ends, and the last ack round is waited for.
func (w *worker) loop(ctx context.Context) error {
	rctx, cancel := context.WithCancel(ctx)
	ch, want := make(chan fetched), make(chan struct{}, 1)
	go w.read(rctx, want, ch)
	w.feed, w.feedErr, w.asked = ch, nil, false
	w.want = want
	defer func() {
		cancel()
		for f := range ch {
			w.nak(f.items, 0)
		}
		w.feed, w.want = nil, nil
		w.settleAcks()
	}()
	for {
		w.ask()
		var f fetched
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-ch:
			if !ok {
				// The reader stopped: cancelled (we are returning anyway) or
				// its last fetch failed and that batch was taken by takeReady.
				if ctx.Err() != nil {
					return nil
				}
				if w.feedErr != nil {
					return w.feedErr
				}
				return errResetup
			}
			f, w.asked = r, false
		}
		if f.err == nil && w.streak >= soloStreak && time.Now().After(w.shared) {
			// Prefetch while this batch is handled. A batch stuck waiting for
			// the watermark takes that one (takeReady).
			w.ask()
		}
		if len(f.items) > 0 {
			if err := w.handle(ctx, f.items); err != nil {
				return err
			}
		} else if w.watermarkWentBack(ctx) {
			return errResetup
		}
		if f.err != nil {
			return f.err
		}
		if w.feedErr != nil {
			return w.feedErr
		}
		w.healthy("consume")
	}
}

// ask asks the reader for a batch unless one was asked for already.
func (w *worker) ask() {
	if !w.asked && w.want != nil {
		w.asked = true
		select {
		case w.want <- struct{}{}:
		default: // cannot happen: one request at most is outstanding
		}
	}
}

// takeReady adds to items the batch the reader has ready, if any, without
// waiting; it reports whether it added one. A fetch error that came with it is
// kept for the loop.
func (w *worker) takeReady(items *[]item) bool {
	if w.feed == nil || w.feedErr != nil {
		return false
	}
	select {
	case f, ok := <-w.feed:
		if !ok {
			w.feed = nil
			return false
		}
		w.asked = false
		w.feedErr = f.err
		*items = append(*items, f.items...)
		sortItems(*items)
		return len(f.items) > 0
	default:
		return false
	}
}

func sortItems(items []item) {
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
}

// read fetches a batch each time one is wanted, parses its events and sends it on
// ch, until ctx is cancelled or a fetch fails (sent as the last batch's error); it
// closes ch.
func (w *worker) read(ctx context.Context, want <-chan struct{}, ch chan<- fetched) {
	defer close(ch)
	for {
		select {
		case <-want:
		case <-ctx.Done():
			return
		}
		if time.Since(w.lastPending) > pendingInterval {
			ictx, cancel := context.WithTimeout(ctx, opTimeout)
			info, err := w.cons.Info(ictx)
			cancel()
			if err == nil {
				w.setPending(info)
			}
		}
		var f fetched
		batch, err := w.cons.Fetch(w.cfg.BatchSize, jetstream.FetchMaxWait(w.cfg.MaxWait))
		if err != nil {
			f.err = fmt.Errorf("fetch from %s/%s: %w", w.cfg.Stream, w.cfg.Consumer, err)
		} else {
			f.items = w.collect(batch)
			if err := batch.Error(); err != nil {
				f.err = fmt.Errorf("fetch from %s/%s: %w", w.cfg.Stream, w.cfg.Consumer, err)
			}
		}
		select {
		case ch <- f:
		case <-ctx.Done():
			w.nak(f.items, 0)
			return
		}
		if f.err != nil {
			return
		}
	}
}

// collect waits for batch's messages and parses them.
func (w *worker) collect(batch jetstream.MessageBatch) []item {
	var items []item
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			// Not a JetStream delivery; nothing to ack.
			w.log.Warn("message without JetStream metadata dropped", "subject", m.Subject(), "err", err)
			continue
		}
		items = append(items, item{m: m, seq: md.Sequence.Stream, cseq: md.Sequence.Consumer, delivered: md.NumDelivered,
			stored: md.Timestamp.UnixNano()})
	}
	w.stats.Fetched.Add(int64(len(items)))
	for i := range items {
		it := &items[i]
		it.ev, it.perr = event.Parse(it.m.Data())
	}
	return items
}

// idleCheck is how often an idle worker reads its watermark back from Redis.
const idleCheck = 2 * time.Second

// watermarkWentBack reports, at most once per idleCheck, whether the watermark
// in Redis is behind the last one this worker applied: Redis lost applies (a
// failover to a replica that had not received them, a restart that lost its
// last writes). A worker with messages to apply finds out by its next apply; an
// idle one, with nothing more to apply, would never find out, so it asks, and
// setup then replays the lost range.
func (w *worker) watermarkWentBack(ctx context.Context) bool {
	if time.Since(w.wmChecked) < idleCheck {
		return false
	}
	w.wmChecked = time.Now()
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	wm, err := w.store.Watermark(cctx, w.ns, w.cfg.Consumer)
	if err != nil || wm >= w.wm {
		return false
	}
	w.log.Warn("the watermark in Redis went back while idle: Redis lost applies; setting up again to replay them",
		"namespace", w.ns, "watermark", wm, "applied", w.wm)
	return true
}
