// Package aggregate is the stage that counts the events of the JetStream stream into
// the Redis projection (internal/projection), exactly once.
//
// Exactly once rests on one invariant: a message is acknowledged only after its
// effect is in Redis, and Redis records, atomically with that effect, the stream
// sequence up to which this consumer has applied (its watermark W). Everything else
// is making sure that each apply covers exactly the messages after W:
//
//  1. The current namespace (the projection pointer) and W are read from Redis
//     first (without Redis no consumer is created), and W is checked against the
//     stream: a stream that lost its tail reuses sequences W already covers, so
//     counting stops with a *TailLostError until a rebuild (see tail.go). Any
//     reconnect to NATS leads back here before a fetched message is trusted.
//  2. A durable pull consumer (cumulative acks, AckAll: an ack covers every
//     message up to its stream sequence; the filter subject, AckWait,
//     MaxAckPending 8×BatchSize, unlimited redeliveries, DeliverAll) is created if
//     missing (one with explicit acks, from an older version, is recreated to
//     deliver from W+1), and W is compared with its ack floor. Acks follow applies, so the floor
//     never passes W unless Redis lost data (restarted without its AOF, flushed):
//     then the consumer is deleted and recreated to deliver from W+1 (everything
//     when W is 0), so the lost range is replayed. W above the floor is normal
//     (acks lost after an apply): those messages come back and are skipped.
//  3. Fetch up to BatchSize messages and sort them by stream sequence. Messages at
//     or below W were applied already: they are dropped, and the highest of them
//     is acked (double ack), which covers the others.
//     The rest is applied only as a contiguous run starting right after W: a
//     message with sequence S follows P when S == P+1, or when it is the stream's
//     first message at or after P+1 on the filter subject (asked of the stream
//     with GetMsg(P+1, subject) only when S != P+1; two first deliveries with
//     consecutive consumer sequences follow each other by construction, which
//     spares that question inside a batch of a filtered consumer). When no
//     message follows W, the one that does is most often being applied by another
//     instance right now, so W is polled for a short while (at most AckWait/4,
//     2s) before giving up; if W does not reach the messages in hand, they are
//     nakked with a short delay (they come back in order later) and step 2 runs
//     again, which also notices a namespace switch or lost Redis data. If the
//     message after W stays away longer than AckWait plus twice that wait (lost
//     among the consumer's redeliveries after broker restarts), step 2
//     repositions the consumer at W+1 as it does after lost Redis data. Without
//     that short wait, instances sharing a consumer would scatter the stream
//     between them and apply a few messages at a time.
//  4. The run's events (parsed once, by the reader, see below) are summed into a
//     projection.Delta and applied by Store.Apply(ns, consumer, prevSeq=W,
//     lastSeq=last of the run): one Lua script that checks the namespace,
//     compares-and-sets W and applies the counts, all or nothing. Applied: W
//     becomes lastSeq and the run's last message is acked (double ack; being
//     cumulative, the ack covers the whole run and everything before it), and
//     the messages after the run, if any, are handled like a new batch. CAS
//     conflict: another instance moved W; W takes the returned value and the run
//     is handled again (a returned W below ours means Redis lost data: back to
//     step 2). Stale namespace: a rebuild switched the pointer; the messages are
//     nakked and step 2 runs again with the new namespace. Messages that fail to
//     parse, and canaries, are logged and counted but still covered by the run's
//     watermark and acked: they stay in the stream, so a rebuild sees them too.
//  5. When NATS or Redis is unavailable the stage logs once per outage, backs off
//     and retries; a message that has not been applied is never acked (it is
//     kept in progress while Redis is retried). Run returns nil on cancellation,
//     after finishing the batch in hand if Redis lets it.
//
// A redelivered batch, whatever its boundaries, therefore changes nothing twice:
// its messages at or below W are skipped, the rest form a new run after W.
//
// # Throughput
//
// Three things keep a backlog moving (BenchmarkAggregate measures the stage from a
// JetStream backlog to the watermark reaching its end):
//
//   - A reader goroutine fetches the next batch and parses its events while the
//     current one is applied and acked, so NATS delivery and JSON decoding overlap
//     with the Redis script. It fetches one batch ahead at most, when asked; a
//     batch that finds no message after W takes the batch the reader has ready
//     before waiting for W; what the reader read but the loop did not handle when
//     it ends (an error, a namespace switch, cancellation) is nakked so that it is
//     redelivered at once. The contiguity rules of step 3 are unchanged. JetStream
//     deals messages out one at a time among the pull requests outstanding on a
//     consumer, so instances sharing a consumer and each prefetching would
//     interleave the stream between them: an instance prefetches only after 3
//     runs in a row that found their first message right after W, and stops for
//     30s after a batch had to wait for W or a CAS conflict.
//   - A run is acked with one cumulative ack of its last message, instead of one
//     ack per message (each of which cost the server a message to route and a
//     pending entry to remove, and the stage a publish), in a round of the acker:
//     the ack is published with a reply subject under the stage's own inbox, and
//     the round is complete when the server has answered it, which it does only
//     after processing it, as for jetstream.Msg.DoubleAck. A round is waited for when the next round
//     starts (after the next apply) and before Run returns, so one round at most
//     is in flight while the next batch is applied. Unconfirmed or refused acks
//     are logged and counted as errors.
//   - Batches of DefaultBatchSize (3000) messages, pre-aggregated by the Delta, so
//     that a page or editor seen several times in a batch costs one update.
//
// Letting the next apply start before the previous run's acks are confirmed does
// not weaken exactly once, because correctness never depended on the ack: the
// watermark CAS does. An ack is only ever sent for a message at or below the W
// just written by the apply that covered it, and W only moves over a contiguous
// run, so everything a cumulative ack covers is applied: (a) the ack floor still never passes
// W, which keeps step 2's data-loss detection sound, and (b) an ack that is lost,
// refused or late only lets JetStream redeliver a message at or below W, which
// step 3 skips (and acks again) without changing any count. What the double ack
// buys is knowing that the server took the acks, so that redeliveries stay rare
// and failures are visible; waiting for it one round later keeps both.
package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/retry"
)

// Stats are the aggregate stage's counters.
type Stats struct {
	// Fetched counts messages fetched, redeliveries included.
	Fetched atomic.Int64
	// Applied counts events applied to the projection.
	Applied atomic.Int64
	// Batches counts successful applies (one per run).
	Batches atomic.Int64
	// Duplicates counts messages skipped because they were applied already.
	Duplicates atomic.Int64
	// OutOfOrder counts messages nakked because an earlier one was still pending.
	OutOfOrder atomic.Int64
	// Invalid counts messages that failed to parse (acked, not counted).
	Invalid atomic.Int64
	// Canaries counts canary events (acked, not counted).
	Canaries atomic.Int64
	// CASConflicts counts applies refused because another instance moved the
	// watermark.
	CASConflicts atomic.Int64
	// NamespaceSwitches counts changes of the current namespace seen by the stage.
	NamespaceSwitches atomic.Int64
	// Recoveries counts consumer recreations after Redis lost data.
	Recoveries atomic.Int64
	// Errors counts failed NATS and Redis operations (each retried).
	Errors atomic.Int64
	// ApplyNanos is the total time spent in Store.Apply calls that succeeded.
	ApplyNanos atomic.Int64
	// ApplyCount is the number of Store.Apply calls that succeeded (any outcome).
	ApplyCount atomic.Int64
	// Pending is the consumer's count of messages not yet delivered (refreshed
	// every few seconds).
	Pending atomic.Int64
	// AckPending is the consumer's count of messages delivered but not acked.
	AckPending atomic.Int64
	// LastSeq is the watermark: the last stream sequence applied.
	LastSeq atomic.Int64
	// FreshnessNanos is, for the last applied run, now minus the time ingest
	// received its newest message (wire.HeaderNATSReceived); 0 when unknown.
	FreshnessNanos atomic.Int64
	// RedeliveryWaits counts the times counting paused because the message
	// after the watermark was delivered (to an instance that stopped mid-batch,
	// most often) and not acknowledged, until JetStream redelivers it.
	RedeliveryWaits atomic.Int64
	// WaitingForSeq is the stream sequence counting waits for during such a
	// pause (0: not waiting).
	WaitingForSeq atomic.Int64
	// StreamLastSeq is the stream's last sequence when the stage last checked it
	// against the watermark (at every setup).
	StreamLastSeq atomic.Int64
	// StreamTailLost is 1 while counting is stopped because the stream lost
	// messages the projection had counted (see TailLostError), else 0.
	StreamTailLost atomic.Int64
}

// Aggregate is the aggregate stage.
type Aggregate struct {
	// cfg is the configuration with the shard's stream, consumer and filter.
	cfg   Config
	log   *slog.Logger
	stats Stats
	// source is the configured stream; shard and shards are this instance's.
	source        string
	shard, shards int
	// redisAddr is the Redis address for messages (no credentials).
	redisAddr string
	// applyDuration observes every successful Store.Apply call.
	applyDuration prometheus.Histogram

	// The connections of the running Run, for Ready.
	nc  atomic.Pointer[nats.Conn]
	rdb atomic.Pointer[redisConn]
	// tailLost is set while counting is stopped because the stream lost its tail.
	tailLost atomic.Pointer[TailLostError]

	// afterApply, when set (tests), runs after an apply succeeded and before the
	// run is acked; an error ends Run with that error, as a crash would.
	afterApply func(lastSeq uint64) error
}

// New returns the stage for cfg.
func New(cfg Config, log *slog.Logger) (*Aggregate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	addr := "?"
	if o, err := cfg.Redis.Options(); err == nil {
		addr = o.Addr
	}
	a := &Aggregate{cfg: cfg, source: cfg.Stream, redisAddr: addr, applyDuration: newApplyDuration()}
	a.shard, a.shards, _ = ParseShard(cfg.Shard)
	a.log = log.With("component", "aggregate")
	if a.shards > 1 {
		a.cfg.Stream = MirrorName(cfg.Stream, a.shards)
		a.cfg.Consumer = ShardConsumer(cfg.Consumer, a.shard, a.shards)
		a.cfg.FilterSubject = ShardFilter(a.shard)
		a.log = a.log.With("shard", cfg.Shard)
	}
	return a, nil
}

// redisConn holds the Redis client of a running Run.
type redisConn struct{ redis.UniversalClient }

// Stats returns the stage's counters.
func (a *Aggregate) Stats() *Stats { return &a.stats }

// Tuning that needs no flag.
const (
	nakDelay        = 50 * time.Millisecond
	minBackoff      = 100 * time.Millisecond
	maxBackoff      = 5 * time.Second
	opTimeout       = 10 * time.Second
	pendingInterval = 3 * time.Second
	maxHold         = 2 * time.Second
	sharedFor       = 30 * time.Second // no prefetching after signs of another instance
	soloStreak      = 3                // runs in a row without waiting before prefetching
)

// Run consumes until ctx is cancelled, then returns nil.
func (a *Aggregate) Run(ctx context.Context) error {
	nc, err := a.cfg.NATS.Connect("aggregate",
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				a.log.Warn("NATS disconnected, reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			a.log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	rdb, err := a.cfg.Redis.Universal()
	if err != nil {
		return err
	}
	defer rdb.Close()
	acks, err := newAcker(nc)
	if err != nil {
		return err
	}
	defer acks.close()
	a.nc.Store(nc)
	a.rdb.Store(&redisConn{rdb})
	defer func() {
		a.nc.Store(nil)
		a.rdb.Store(nil)
	}()
	w := &worker{
		Aggregate: a,
		nc:        nc,
		rdb:       rdb,
		js:        js,
		acks:      acks,
		store:     projection.NewShardStore(rdb, a.cfg.Base, a.shard, a.shards),
		delta:     projection.NewDelta(),
		down:      map[string]time.Time{},
	}
	return w.run(ctx)
}

// errResetup asks the main loop to run setup again (not an outage).
var errResetup = errors.New("setup again")

// worker is one Run's state; it is used by one goroutine.
type worker struct {
	*Aggregate
	nc    *nats.Conn
	rdb   redis.UniversalClient
	js    jetstream.JetStream
	acks  *acker
	store *projection.Store
	delta *projection.Delta

	stream jetstream.Stream
	cons   jetstream.Consumer
	ns     string
	wm     uint64
	conns  uint64 // the connection's reconnect count at setup

	down        map[string]time.Time // outages in progress, by what failed
	lastPending time.Time            // read by the reader goroutine only, once started
	acking      *ackRound            // the ack round not yet waited for
	feed        <-chan fetched       // the reader's batches, while loop runs
	want        chan<- struct{}      // asks the reader for a batch, while loop runs
	asked       bool                 // a batch was asked of the reader and not received
	shared      time.Time            // no prefetching before: another instance shares the consumer
	streak      int                  // runs applied in a row without waiting for the watermark
	stuckSince  time.Time            // since when no fetched message has followed W (zero: progressing)
	missing     uint64               // the sequence after W the stream holds, when no message in hand follows W
	pauseLogged bool                 // the pause since stuckSince was logged and counted
	feedErr     error                // a fetch error taken with a batch by takeReady
	wmChecked   time.Time            // when an idle loop last read the watermark back
}

// item is a fetched message with its metadata and its parsed event.
type item struct {
	m         jetstream.Msg
	seq       uint64 // stream sequence
	cseq      uint64 // consumer sequence
	delivered uint64
	stored    int64 // when the stream stored it, Unix ns
	ev        event.Event
	perr      error // from event.Parse
}

func (w *worker) run(ctx context.Context) error {
	backoff := retry.NewDoubling(minBackoff, maxBackoff)
	for ctx.Err() == nil {
		err := w.setup(ctx)
		var lost *TailLostError
		if errors.As(err, &lost) {
			w.refuse(ctx, lost)
			continue
		}
		if errors.Is(err, projection.ErrShardCount) {
			return err
		}
		if err == nil {
			backoff.Reset()
			err = w.loop(ctx)
			if err == nil || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errResetup) {
				continue
			}
			if errors.Is(err, errHook) {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		w.failed("consume", err)
		if !retry.Sleep(ctx, backoff.Next()) {
			return nil
		}
	}
	return nil
}

// failed logs err once per outage of what.
func (w *worker) failed(what string, err error) {
	w.stats.Errors.Add(1)
	if _, ok := w.down[what]; ok {
		w.log.Debug(what+" still failing", "err", err)
		return
	}
	w.down[what] = time.Now()
	w.log.Warn(what+" failed, retrying with backoff", "err", err)
}

// healthy ends an outage of what.
func (w *worker) healthy(what string) {
	if since, ok := w.down[what]; ok {
		delete(w.down, what)
		w.log.Info(what+" works again", "after", time.Since(since).Round(time.Millisecond))
	}
}
