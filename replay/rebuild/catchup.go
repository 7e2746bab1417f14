package rebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// catchUp applies cr's share of the log up to and including target.
//
// The reader counts each batch, encodes it and hands it to an applier goroutine,
// so that reading, counting and encoding overlap with Redis applying the previous
// batches. A batch's counters are applied in one call that moves the rebuilt
// namespace's watermark; its sorted sets and sketches follow in calls of at most
// detailPerCall members, their members in each set's own order. Before catchUp
// returns every batch is applied, hence before any comparison or switch.
func (r *Rebuilder) catchUp(ctx context.Context, store *projection.Store, ns string, cr *consumerRun, target uint64, prog *progress) (int64, error) {
	a := startApplier(ctx, store, ns, cr, prog)
	b := &batcher{store: store, ns: ns, cr: cr, a: a, size: r.cfg.BatchSize, sent: cr.applied}
	err := b.readUpTo(ctx, target)
	if err == nil {
		err = b.flush()
	}
	if err != nil {
		// Stop the applier before reporting what it applied (which only the
		// applier writes until then).
		_ = a.stop()
		return a.applied, err
	}
	if err := a.stop(); err != nil {
		return a.applied, err
	}
	cr.applied = a.upto
	if cr.applied < target {
		return a.applied, fmt.Errorf("consumer %s: the log skipped from %d past the live watermark %d (was its filter changed?)", cr.name, cr.applied, target)
	}
	return a.applied, nil
}

// batch is one counted and encoded batch waiting for Redis.
type batch struct {
	preps []*projection.Prepared
	upto  uint64 // the last sequence it holds
	n     int    // the messages it holds
}

// applier applies batches in order in its own goroutine. applied and upto are
// written by that goroutine only, and read after stop.
type applier struct {
	jobs     chan batch
	failed   chan error
	finished chan struct{}
	applied  int64  // messages applied
	upto     uint64 // the last sequence applied
}

// startApplier starts the applier of cr's batches to namespace ns.
func startApplier(ctx context.Context, store *projection.Store, ns string, cr *consumerRun, prog *progress) *applier {
	a := &applier{jobs: make(chan batch, applyQueue), failed: make(chan error, 1), finished: make(chan struct{}), upto: cr.applied}
	go a.run(ctx, store, ns, cr.name, prog)
	return a
}

func (a *applier) run(ctx context.Context, store *projection.Store, ns, consumer string, prog *progress) {
	defer close(a.finished)
	for j := range a.jobs {
		if err := applyBatch(ctx, store, ns, consumer, j); err != nil {
			a.failed <- err
			for range a.jobs {
			}
			return
		}
		a.applied += int64(j.n)
		a.upto = j.upto
		prog.add(j.n, j.upto)
	}
}

// applyBatch runs a batch's prepared calls.
func applyBatch(ctx context.Context, store *projection.Store, ns, consumer string, j batch) error {
	for _, p := range j.preps {
		res, err := store.RunPrepared(ctx, p)
		if err != nil {
			return err
		}
		if res.Status != projection.Applied {
			return fmt.Errorf("apply to %s as %s: %s (watermark %d): another rebuild is writing to it?", ns, consumer, res.Status, res.Watermark)
		}
	}
	return nil
}

// send queues a batch, or returns the error the applier stopped with.
func (a *applier) send(j batch) error {
	select {
	case a.jobs <- j:
		return nil
	case err := <-a.failed:
		a.failed <- err
		return err
	}
}

// stop waits for the applier and returns its error, if any.
func (a *applier) stop() error {
	if a.jobs != nil {
		close(a.jobs)
		a.jobs = nil
	}
	<-a.finished
	select {
	case err := <-a.failed:
		a.failed <- err
		return err
	default:
		return nil
	}
}

// batcher reads cr's messages, counts them into batches of size and sends each
// to the applier.
type batcher struct {
	store *projection.Store
	ns    string
	cr    *consumerRun
	a     *applier
	size  int
	// sent is the last sequence of the batches sent; last the last sequence
	// counted; pending how many messages are counted but not sent.
	sent, last uint64
	pending    int
}

// readUpTo counts messages up to and including target; a message beyond it is
// kept in cr.next for the next round.
func (b *batcher) readUpTo(ctx context.Context, target uint64) error {
	for max(b.sent, b.last) < target {
		m, err := b.next(ctx, target)
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if md.Sequence.Stream > target {
			b.cr.next = m
			return nil
		}
		if err := b.count(m.Data(), md.Sequence.Stream); err != nil {
			return err
		}
	}
	return nil
}

// next returns the message kept from the previous round or the next one of the
// log; nil when none came within idleRead and the log still has some pending.
func (b *batcher) next(ctx context.Context, target uint64) (jetstream.Msg, error) {
	if m := b.cr.next; m != nil {
		b.cr.next = nil
		return m, nil
	}
	m, err := b.cr.it.Next(jetstream.NextMaxWait(idleRead))
	if errors.Is(err, nats.ErrTimeout) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, checkPending(ctx, b.cr, max(b.sent, b.last), target)
	}
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return m, nil
}

// count adds one message (sequence seq) to the batch, sending the batch when full.
func (b *batcher) count(data []byte, seq uint64) error {
	if ev, err := event.Parse(data); err == nil {
		b.cr.counts.Add(&ev)
		b.cr.detail.Add(&ev)
	}
	b.last = seq
	b.pending++
	if b.pending >= b.size {
		return b.flush()
	}
	return nil
}

// flush encodes the pending batch and sends it to the applier.
func (b *batcher) flush() error {
	if b.pending == 0 {
		return nil
	}
	counts, err := b.store.PrepareStandby(b.ns, b.cr.name, b.sent, b.last, b.cr.counts)
	if err != nil {
		return err
	}
	detail, err := b.store.PrepareDetail(b.ns, b.cr.name, b.last, b.cr.detail, detailPerCall)
	if err != nil {
		return err
	}
	b.cr.counts.Reset()
	b.cr.detail.Reset()
	if err := b.a.send(batch{preps: []*projection.Prepared{counts, detail}, upto: b.last, n: b.pending}); err != nil {
		return err
	}
	b.sent, b.pending = b.last, 0
	return nil
}

// checkPending fails when cr's replay has nothing more to read while it is still
// below target.
func checkPending(ctx context.Context, cr *consumerRun, at, target uint64) error {
	info, err := cr.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	if info.NumPending == 0 && cr.next == nil {
		return fmt.Errorf("consumer %s: the log has nothing after %d, below the live watermark %d (was its filter changed, or the stream purged?)", cr.name, at, target)
	}
	return nil
}
