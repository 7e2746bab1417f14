package projection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bulk tuning.
const (
	// bulkPerCommand bounds the members or fields one command carries.
	bulkPerCommand = 512
	// bulkPerPipeline bounds the commands sent in one round trip.
	bulkPerPipeline = 2048
)

// Bulk writes Deltas into a namespace that nobody reads and nobody else writes
// yet (a rebuild's, claimed fresh), with plain pipelined commands instead of
// the apply script: no watermark compare-and-set, no validation pass, no score
// reads. A key that this Bulk has not written yet is new, so its counters are
// set with one multi-field HSET or multi-member ZADD per chunk; a key it wrote
// before is incremented: HINCRBY per field, and per chunk of sorted-set members
// one call of a small script that reads their scores (ZMSCORE) and writes the
// sums (one ZADD), as the apply script does, rather than one ZINCRBY per member.
// The legacy hash is never mirrored.
//
// Writes are not atomic: a failure or a crash in the middle leaves the
// namespace half written, with its watermarks and meta unchanged. The caller
// must then discard the namespace (it is never switched to: Switch requires the
// watermarks to equal the live ones, and only Checkpoint moves them). Once
// every Delta of a range of sequences is written, Checkpoint records the range.
// A Bulk is not safe for concurrent use.
type Bulk struct {
	s       *Store
	ns      string
	written map[string]struct{}
	pipe    redis.Pipeliner
	queued  int
}

// NewBulk returns a Bulk writing into namespace ns, which must be fresh.
func (s *Store) NewBulk(ns string) *Bulk {
	return &Bulk{s: s, ns: ns, written: map[string]struct{}{}}
}

// Write applies every counter of d (whatever its Parts and horizon left in it);
// d's event count, newest event time and first sequence are not recorded (see
// Checkpoint). d may be reset as soon as Write returns.
func (b *Bulk) Write(ctx context.Context, d *Delta) error {
	if b.ns == "" {
		return errors.New("bulk write: empty namespace")
	}
	// A fresh namespace is not current: nothing is mirrored into the legacy hash.
	keys, args := d.encode(b.s.Keys(b.ns), false, d.keys[:0], d.args[:0])
	d.keys, d.args = keys, args
	b.pipe = b.s.c.Pipeline()
	fresh := map[string]bool{}
	for i := 0; i < len(args); {
		ki, op, ttl, n := args[i].(int), args[i+1].(string), args[i+2].(int64), args[i+3].(int)
		key := keys[ki-1]
		isNew, seen := fresh[key]
		if !seen {
			_, old := b.written[key]
			isNew = !old
			fresh[key] = isNew
		}
		width := 2
		if op == opZOne || op == opHLL {
			width = 1
		}
		body := args[i+4 : i+4+width*n]
		if err := b.group(ctx, key, op, body, n, isNew); err != nil {
			return err
		}
		if ttl > 0 {
			if err := b.queue(ctx, "expire", key, ttl); err != nil {
				return err
			}
		}
		i += 4 + width*n
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	for key := range fresh {
		b.written[key] = struct{}{}
	}
	return nil
}

// group queues the commands of one encoded group (see applySource for the ops).
func (b *Bulk) group(ctx context.Context, key, op string, body []any, n int, isNew bool) error {
	switch {
	case op == opHLL:
		return b.chunks(ctx, n, func(from, to int) []any { return append([]any{"pfadd", key}, body[from:to]...) })
	case op == opHash || op == opDomain:
		if isNew {
			return b.chunks(ctx, n, func(from, to int) []any { return append([]any{"hset", key}, body[2*from:2*to]...) })
		}
		for j := 0; j < n; j++ {
			if err := b.queue(ctx, "hincrby", key, body[2*j], body[2*j+1]); err != nil {
				return err
			}
		}
		return nil
	}
	// Sorted sets: op z carries n members then their n increments, op u members
	// counted once.
	score := func(j int) any {
		if op == opZOne {
			return 1
		}
		return body[n+j]
	}
	if isNew {
		return b.chunks(ctx, n, func(from, to int) []any {
			c := make([]any, 0, 2+2*(to-from))
			c = append(c, "zadd", key)
			for j := from; j < to; j++ {
				c = append(c, score(j), body[j])
			}
			return c
		})
	}
	return b.chunks(ctx, n, func(from, to int) []any {
		c := make([]any, 0, 5+2*(to-from))
		c = append(c, "evalsha", b.s.zincrScript.Hash(), 1, key)
		for j := from; j < to; j++ {
			c = append(c, body[j], score(j))
		}
		return c
	})
}

// chunks queues the commands cmd builds for items [from, to) in chunks of at
// most bulkPerCommand items.
func (b *Bulk) chunks(ctx context.Context, n int, cmd func(from, to int) []any) error {
	for from := 0; from < n; from += bulkPerCommand {
		if err := b.queue(ctx, cmd(from, min(n, from+bulkPerCommand))...); err != nil {
			return err
		}
	}
	return nil
}

// queue adds one command to the pipeline, sending it when full.
func (b *Bulk) queue(ctx context.Context, args ...any) error {
	b.pipe.Do(ctx, args...)
	if b.queued++; b.queued >= bulkPerPipeline {
		return b.flush(ctx)
	}
	return nil
}

// flush sends the queued commands and checks every reply.
func (b *Bulk) flush(ctx context.Context) error {
	if b.queued == 0 {
		return nil
	}
	b.queued = 0
	cmds, err := b.pipe.Exec(ctx)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// The script cache was flushed (or never held the script): load it and
		// send the chunk again. Each command of the chunk either ran or failed
		// with NOSCRIPT before any write, so only the failed ones are resent.
		return b.resend(ctx, cmds)
	}
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("bulk write to %s: %s: %w", b.ns, c.Name(), c.Err())
			}
		}
		return fmt.Errorf("bulk write to %s: %w", b.ns, err)
	}
	return nil
}

// resend loads the sorted-set script and sends again the commands of cmds that
// failed with NOSCRIPT.
func (b *Bulk) resend(ctx context.Context, cmds []redis.Cmder) error {
	if err := b.s.zincrScript.Load(ctx, b.s.c).Err(); err != nil {
		return fmt.Errorf("bulk write to %s: load script: %w", b.ns, err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			if !redis.HasErrorPrefix(err, "NOSCRIPT") {
				return fmt.Errorf("bulk write to %s: %s: %w", b.ns, c.Name(), err)
			}
			b.pipe.Do(ctx, c.Args()...)
			b.queued++
		}
	}
	return b.flush(ctx)
}

// Checkpoint records, after the counters of consumer's sequences (prevSeq,
// lastSeq] were written with Write, what the apply script records with them:
// the consumer's watermark moves from prevSeq to lastSeq (else Conflict, changing
// nothing), the meta counts events more events, its as_of becomes asOf if that is
// newer, and its first_seq becomes firstSeq if unset (0: leave it).
func (b *Bulk) Checkpoint(ctx context.Context, consumer string, prevSeq, lastSeq uint64, events int64, asOf time.Time, firstSeq uint64) (ApplyResult, error) {
	if b.ns == "" || consumer == "" {
		return ApplyResult{}, errors.New("checkpoint: empty namespace or consumer name")
	}
	if lastSeq < prevSeq || events < 0 {
		return ApplyResult{}, fmt.Errorf("checkpoint: range (%d,%d] with %d events", prevSeq, lastSeq, events)
	}
	var asOfMs int64
	if !asOf.IsZero() {
		asOfMs = asOf.UnixMilli()
	}
	k := b.s.Keys(b.ns)
	keys := []string{k.Pointer(), k.Watermarks(), k.Meta(), b.s.legacyKey(k)}
	args := applyHeader(b.ns, consumer, prevSeq, lastSeq, asOfMs, events, firstSeq, false, nil)
	v, err := b.s.applyScript.Run(ctx, b.s.c, keys, args...).Slice()
	if err != nil {
		return ApplyResult{}, fmt.Errorf("checkpoint %s as %s (%d,%d]: %w", b.ns, consumer, prevSeq, lastSeq, err)
	}
	return parseApply(v)
}

// applyHeader appends the apply script's fixed arguments to args.
func applyHeader(ns, consumer string, prevSeq, lastSeq uint64, asOfMs, events int64, first uint64, requireCurrent bool, args []any) []any {
	req := "0"
	if requireCurrent {
		req = "1"
	}
	return append(args, ns, DefaultNamespace, consumer,
		strconv.FormatUint(prevSeq, 10), strconv.FormatUint(lastSeq, 10),
		strconv.FormatInt(time.Now().UnixMilli(), 10), strconv.FormatInt(asOfMs, 10),
		strconv.FormatInt(events, 10), strconv.FormatUint(first, 10), req)
}
