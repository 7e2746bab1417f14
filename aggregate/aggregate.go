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
//  2. A durable pull consumer (explicit ack, the filter subject, AckWait,
//     MaxAckPending 8×BatchSize, unlimited redeliveries, DeliverAll) is created if
//     missing, and W is compared with its ack floor. Acks follow applies, so the floor
//     never passes W unless Redis lost data (restarted without its AOF, flushed):
//     then the consumer is deleted and recreated to deliver from W+1 (everything
//     when W is 0), so the lost range is replayed. W above the floor is normal
//     (acks lost after an apply): those messages come back and are skipped.
//  3. Fetch up to BatchSize messages and sort them by stream sequence. Messages at
//     or below W were applied already: they are acked (double ack) and dropped.
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
//     becomes lastSeq and every message of the run is acked (double ack), and
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
//   - A run is acked in one round (see acker): every ack is published at once with
//     a reply subject under the stage's own inbox, and the round is complete when
//     the server has answered each ack, which it does only after processing it,
//     as for jetstream.Msg.DoubleAck. A round is waited for when the next round
//     starts (after the next apply) and before Run returns, so one round at most
//     is in flight while the next batch is applied. Unconfirmed or refused acks
//     are logged and counted as errors.
//   - Batches of DefaultBatchSize (2000) messages, pre-aggregated by the Delta, so
//     that a page or editor seen several times in a batch costs one update.
//
// Letting the next apply start before the previous run's acks are confirmed does
// not weaken exactly once, because correctness never depended on the ack: the
// watermark CAS does. An ack is only ever sent for messages at or below the W just
// written by the apply that covered them, so (a) the ack floor still never passes
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
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
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
	cfg   Config
	log   *slog.Logger
	stats Stats
	// redisAddr is the Redis address for messages (no credentials).
	redisAddr string
	// applyDuration observes every successful Store.Apply call.
	applyDuration prometheus.Histogram

	// The connections of the running Run, for Ready.
	nc  atomic.Pointer[nats.Conn]
	rdb atomic.Pointer[redis.Client]
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
	return &Aggregate{cfg: cfg, log: log.With("component", "aggregate"), redisAddr: addr, applyDuration: newApplyDuration()}, nil
}

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
	rdb, err := a.cfg.Redis.Client()
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
	a.rdb.Store(rdb)
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
		store:     projection.NewStore(rdb, a.cfg.Base),
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
	rdb   *redis.Client
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

// setup reads the namespace and watermark (Redis first: without Redis no consumer
// is created), checks the watermark against the stream (a *TailLostError when the
// stream lost messages already counted), (re)binds the stream and consumer, and
// recreates the consumer from W+1 when Redis lost data.
func (w *worker) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	w.conns = w.nc.Stats().Reconnects
	pos, err := w.position(ctx)
	if err != nil {
		return fmt.Errorf("redis %s: %w", w.redisAddr, err)
	}
	ns, wm := pos.ns, pos.wm
	stream, err := w.js.Stream(ctx, w.cfg.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", w.cfg.Stream, err)
	}
	if err := w.checkTail(ctx, stream, pos); err != nil {
		return err
	}
	cons, err := w.ensureConsumer(ctx, stream)
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s info: %w", w.cfg.Consumer, err)
	}
	floor := info.AckFloor.Stream
	stalled := !w.stuckSince.IsZero() && time.Since(w.stuckSince) > w.stallLimit()
	switch {
	case wm < floor:
		w.log.Warn("watermark in Redis is behind the consumer's ack floor: Redis lost data; replaying the lost range",
			"namespace", ns, "watermark", wm, "ack_floor", floor)
	case stalled:
		w.log.Warn("the message after the watermark has not come back; repositioning the consumer right after it",
			"namespace", ns, "watermark", wm, "waiting_for", time.Since(w.stuckSince).Round(time.Second),
			"ack_pending", info.NumAckPending)
	}
	if wm < floor || stalled {
		if cons, err = w.reposition(ctx, stream, wm); err != nil {
			return err
		}
		w.stuckSince, w.pauseLogged = time.Time{}, false
		w.stats.WaitingForSeq.Store(0)
		w.stats.Recoveries.Add(1)
	}
	if w.ns != "" && w.ns != ns {
		w.stats.NamespaceSwitches.Add(1)
		w.log.Info("projection namespace switched", "from", w.ns, "to", ns, "watermark", wm)
	}
	w.stream, w.cons, w.ns, w.wm = stream, cons, ns, wm
	w.stats.LastSeq.Store(int64(wm))
	w.setPending(info)
	return nil
}

// reposition deletes the durable consumer and creates it again to deliver from
// wm+1 (everything when wm is 0), dropping every pending delivery.
func (w *worker) reposition(ctx context.Context, stream jetstream.Stream, wm uint64) (jetstream.Consumer, error) {
	if err := stream.DeleteConsumer(ctx, w.cfg.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("delete consumer %s: %w", w.cfg.Consumer, err)
	}
	cc := w.consumerConfig()
	if wm > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = wm + 1
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("recreate consumer %s: %w", w.cfg.Consumer, err)
	}
	return cons, nil
}

// stallLimit is how long the message right after the watermark may stay away
// before the consumer is repositioned: long enough for a delivery held by a dead
// instance to be redelivered after AckWait.
func (w *worker) stallLimit() time.Duration {
	return w.cfg.AckWait + 2*w.hold()
}

func (w *worker) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       w.cfg.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: w.cfg.FilterSubject,
		AckWait:       w.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 8 * w.cfg.BatchSize,
	}
}

// ensureConsumer returns the durable consumer, creating it or updating its
// settings; an existing consumer keeps its deliver policy and start sequence.
func (w *worker) ensureConsumer(ctx context.Context, stream jetstream.Stream) (jetstream.Consumer, error) {
	cc := w.consumerConfig()
	cons, err := stream.Consumer(ctx, w.cfg.Consumer)
	switch {
	case err == nil:
		old := cons.CachedInfo().Config
		if old.FilterSubject == cc.FilterSubject && old.AckWait == cc.AckWait &&
			old.MaxAckPending == cc.MaxAckPending && old.AckPolicy == cc.AckPolicy && old.MaxDeliver == cc.MaxDeliver {
			return cons, nil
		}
		if old.FilterSubject != cc.FilterSubject {
			w.log.Warn("changing the consumer's filter subject; its watermark keeps counting from where it was",
				"consumer", w.cfg.Consumer, "from", old.FilterSubject, "to", cc.FilterSubject)
		}
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("consumer %s: %w", w.cfg.Consumer, err)
	}
	cons, err = stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", w.cfg.Consumer, err)
	}
	return cons, nil
}

func (w *worker) setPending(info *jetstream.ConsumerInfo) {
	w.stats.Pending.Store(int64(info.NumPending))
	w.stats.AckPending.Store(int64(info.NumAckPending))
	w.lastPending = time.Now()
}

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
			msgs := make([]jetstream.Msg, len(run))
			for i, it := range run {
				msgs[i] = it.m
			}
			w.ack(msgs)
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

// dropApplied acks and drops the items at or below W (applied already) and a
// sequence delivered twice, and returns the rest.
func (w *worker) dropApplied(items []item) []item {
	keep := items[:0]
	var dups []jetstream.Msg
	var prev uint64
	for _, it := range items {
		if it.seq <= w.wm || it.seq == prev {
			dups = append(dups, it.m)
			continue
		}
		prev = it.seq
		keep = append(keep, it)
	}
	if len(dups) > 0 {
		w.stats.Duplicates.Add(int64(len(dups)))
		w.ack(dups)
	}
	return keep
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

// errHook marks the test hook's simulated crash.
var errHook = errors.New("after-apply hook")

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

// ack starts double-acking msgs (see acker) after waiting for the previous round.
// A failed ack only means the message comes back later and is skipped as a
// duplicate.
func (w *worker) ack(msgs []jetstream.Msg) {
	w.settleAcks()
	w.acking = w.acks.start(msgs)
}

// settleAcks waits for the ack round in progress, if any, and reports failures.
func (w *worker) settleAcks() {
	if w.acking == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	n, err := w.acks.wait(ctx, w.acking)
	w.acking = nil
	if err != nil {
		w.failed("ack", fmt.Errorf("%d acks not confirmed (they will be redelivered and skipped): %w", n, err))
		return
	}
	w.healthy("ack")
}

// nak asks for redelivery of items after delay (best effort: unacked messages are
// redelivered after AckWait anyway).
func (w *worker) nak(items []item, delay time.Duration) {
	for _, it := range items {
		var err error
		if delay > 0 {
			err = it.m.NakWithDelay(delay)
		} else {
			err = it.m.Nak()
		}
		if err != nil {
			w.log.Debug("nak failed", "seq", it.seq, "err", err)
		}
	}
}
