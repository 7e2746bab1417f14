package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// catchUp applies cr's share of the log up to and including target.
//
// The reader counts each batch into a Delta and hands it to an applier
// goroutine, which writes it to the namespace with pipelined commands
// (projection.Bulk) while the reader counts the next batch into a second Delta.
// No batch moves the watermark: once every batch up to target is written,
// one checkpoint records the range, its event count and its newest event time.
// A failure in between leaves the namespace's watermarks where they were and
// the rebuild drops the namespace; a crash leaves a namespace nobody points at,
// which no rebuild resumes. Before catchUp returns every batch is written and
// checkpointed, hence before any comparison or switch.
func (r *Rebuilder) catchUp(ctx context.Context, bulk *projection.Bulk, cr *consumerRun, target uint64, prog *progress) (int64, error) {
	a := startApplier(ctx, bulk, cr, prog)
	b := &batcher{cr: cr, a: a, size: r.cfg.BatchSize, sent: cr.applied, d: cr.deltas[0]}
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
	if a.upto > cr.applied {
		res, err := bulk.Checkpoint(ctx, cr.name, cr.applied, a.upto, b.events, b.asOf, b.firstSeq)
		if err != nil {
			return a.applied, err
		}
		if res.Status != projection.Applied {
			return a.applied, fmt.Errorf("checkpoint as %s: %s (watermark %d): another rebuild is writing to the namespace?", cr.name, res.Status, res.Watermark)
		}
	}
	cr.applied = a.upto
	if cr.applied < target {
		return a.applied, fmt.Errorf("consumer %s: the log skipped from %d past the live watermark %d (was its filter changed?)", cr.name, cr.applied, target)
	}
	return a.applied, nil
}

// batch is one counted batch waiting for Redis.
type batch struct {
	d    *projection.Delta
	upto uint64 // the last sequence it holds
	n    int    // the messages it holds
}

// applier writes batches in order in its own goroutine and hands their Deltas
// back, reset, on free. applied and upto are written by that goroutine only, and
// read after stop.
type applier struct {
	jobs     chan batch
	free     chan *projection.Delta
	failed   chan error
	finished chan struct{}
	applied  int64  // messages applied
	upto     uint64 // the last sequence applied
}

// startApplier starts the applier of cr's batches.
func startApplier(ctx context.Context, bulk *projection.Bulk, cr *consumerRun, prog *progress) *applier {
	a := &applier{jobs: make(chan batch, 1), free: make(chan *projection.Delta, len(cr.deltas)),
		failed: make(chan error, 1), finished: make(chan struct{}), upto: cr.applied}
	for _, d := range cr.deltas[1:] {
		a.free <- d
	}
	// The goroutine gets the channel itself: stop clears a.jobs, possibly
	// before the goroutine has started.
	go a.run(ctx, a.jobs, bulk, prog)
	return a
}

func (a *applier) run(ctx context.Context, jobs <-chan batch, bulk *projection.Bulk, prog *progress) {
	defer close(a.finished)
	for j := range jobs {
		err := bulk.Write(ctx, j.d)
		j.d.Reset()
		a.free <- j.d
		if err != nil {
			a.failed <- err
			for j := range jobs {
				j.d.Reset()
				a.free <- j.d
			}
			return
		}
		a.applied += int64(j.n)
		a.upto = j.upto
		prog.add(j.n, j.upto)
	}
}

// send queues a batch and returns an empty Delta for the next one, or the error
// the applier stopped with.
func (a *applier) send(j batch) (*projection.Delta, error) {
	select {
	case a.jobs <- j:
	case err := <-a.failed:
		a.failed <- err
		return nil, err
	}
	select {
	case d := <-a.free:
		return d, nil
	case err := <-a.failed:
		a.failed <- err
		return nil, err
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
	cr   *consumerRun
	a    *applier
	size int
	// d is the Delta being counted.
	d *projection.Delta
	// sent is the last sequence of the batches sent; last the last sequence
	// counted; pending how many messages are counted but not sent.
	sent, last uint64
	pending    int
	// events, asOf and firstSeq are what the checkpoint records: the events
	// counted, the newest event time, the sequence of the first event counted.
	events   int64
	asOf     time.Time
	firstSeq uint64
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
		b.d.Add(&ev)
		if b.firstSeq == 0 {
			b.firstSeq = seq
		}
	}
	b.last = seq
	b.pending++
	if b.pending >= b.size {
		return b.flush()
	}
	return nil
}

// flush sends the pending batch to the applier.
func (b *batcher) flush() error {
	if b.pending == 0 {
		return nil
	}
	b.events += int64(b.d.Len())
	if t := b.d.AsOf(); t.After(b.asOf) {
		b.asOf = t
	}
	d, err := b.a.send(batch{d: b.d, upto: b.last, n: b.pending})
	if err != nil {
		return err
	}
	b.d = d
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
