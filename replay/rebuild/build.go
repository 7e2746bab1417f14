package rebuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// build is the state of the rebuild of one shard (or of the unsharded
// projection): the steps below fill it in order.
type build struct {
	*Rebuilder
	// log is the Rebuilder's, naming the shard of a sharded projection.
	log   *slog.Logger
	rc    redis.UniversalClient
	store *projection.Store
	// bulk writes into the namespace being built.
	bulk *projection.Bulk
	res  *Result
	// live is the namespace current when the rebuild started; names its
	// consumers (the fields of its watermarks), sorted.
	live  string
	names []string
	runs  []*consumerRun
	prog  *progress
	// keepBuilt keeps a namespace built in full for inspection when it differs.
	keepBuilt bool
}

// consumerRun is the replay of one live consumer's share of the log.
type consumerRun struct {
	name    string
	cons    jetstream.Consumer
	it      jetstream.MessagesContext
	applied uint64
	next    jetstream.Msg // read beyond the current target, applied in a later round
	// deltas are the batch being counted and the one being written.
	deltas [2]*projection.Delta
}

// readLive reads the live namespace, its consumers and the horizon: its as_of,
// by which it has let buckets expire (those are not rebuilt).
func (b *build) readLive(ctx context.Context) (time.Time, error) {
	live, err := b.store.Current(ctx)
	if err != nil {
		return time.Time{}, err
	}
	b.live, b.res.From = live, live
	wms, err := b.store.Watermarks(ctx, live)
	if err != nil {
		return time.Time{}, fmt.Errorf("read live watermarks: %w", err)
	}
	if len(wms) == 0 {
		return time.Time{}, fmt.Errorf("the live projection %q has no watermark yet: no aggregate has applied anything to rebuild against", live)
	}
	for name := range wms {
		b.names = append(b.names, name)
	}
	sort.Strings(b.names)
	meta, err := b.store.Meta(ctx, live)
	if err != nil {
		return time.Time{}, err
	}
	return meta.AsOf, nil
}

// openRuns starts an ordered replay consumer for each live consumer, with its
// filter. The returned function stops and removes them (call it even on error).
func (b *build) openRuns(ctx context.Context, st jetstream.Stream, horizon time.Time) (func(), error) {
	var undo []func()
	closeAll := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, name := range b.names {
		ci, err := st.Consumer(ctx, name)
		if err != nil {
			return closeAll, fmt.Errorf("live consumer %s (named in the projection's watermarks): %w", name, err)
		}
		oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filtersOf(ci.CachedInfo().Config)})
		if err != nil {
			return closeAll, fmt.Errorf("replay consumer for %s: %w", name, err)
		}
		undo = append(undo, func() { removeConsumer(st, oc) })
		it, err := oc.Messages(jetstream.PullMaxMessagesWithBytesLimit(readAheadMessages, readAheadBytes))
		if err != nil {
			return closeAll, fmt.Errorf("replay consumer for %s: %w", name, err)
		}
		undo = append(undo, it.Stop)
		b.runs = append(b.runs, &consumerRun{name: name, cons: oc, it: it,
			deltas: [2]*projection.Delta{projection.NewPartialDelta(projection.AllParts, horizon),
				projection.NewPartialDelta(projection.AllParts, horizon)}})
	}
	return closeAll, nil
}

// filtersOf are the subjects a consumer reads.
func filtersOf(cfg jetstream.ConsumerConfig) []string {
	if cfg.FilterSubject != "" {
		return []string{cfg.FilterSubject}
	}
	if len(cfg.FilterSubjects) == 0 {
		return []string{wire.SubjectAll}
	}
	return cfg.FilterSubjects
}

// removeConsumer deletes a replay consumer from the server.
func removeConsumer(st jetstream.Stream, c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = st.DeleteConsumer(ctx, info.Name)
}

// claimTarget claims the namespace to rebuild into and marks it partial when
// retention has dropped the oldest events.
func (b *build) claimTarget(ctx context.Context, state jetstream.StreamState) error {
	to, err := claim(ctx, b.rc, b.store, "r"+time.Now().UTC().Format("20060102t150405"))
	if err != nil {
		return err
	}
	b.res.To = to
	b.bulk = b.store.NewBulk(to)
	if state.FirstSeq > 1 {
		b.res.Partial = true
		b.res.PartialFrom = state.FirstTime.UTC()
		if err := b.rc.HSet(ctx, b.store.Keys(to).Meta(), projection.MetaPartialFrom, b.res.PartialFrom.UnixMilli()).Err(); err != nil {
			return fmt.Errorf("mark partial: %w", err)
		}
		b.log.Warn("retention has dropped the oldest events: the rebuild is partial", "counts_from", b.res.PartialFrom.Format(time.RFC3339), "first_seq", state.FirstSeq)
	}
	b.log.Info("rebuilding", "from", b.live, "into", to, "consumers", b.names, "log_seq", fmt.Sprintf("%d..%d", state.FirstSeq, state.LastSeq))
	return nil
}

// claim reserves a fresh namespace named after name (name, then name-2, name-3,
// ...): the first whose meta hash did not exist, created with its start time.
func claim(ctx context.Context, rc redis.UniversalClient, store *projection.Store, name string) (string, error) {
	for i := 1; i <= 100; i++ {
		ns := name
		if i > 1 {
			ns = name + "-" + strconv.Itoa(i)
		}
		ok, err := rc.HSetNX(ctx, store.Keys(ns).Meta(), projection.MetaStarted, time.Now().UnixMilli()).Result()
		if err != nil {
			return "", fmt.Errorf("claim namespace %s: %w", ns, err)
		}
		if ok {
			return ns, nil
		}
	}
	return "", fmt.Errorf("claim namespace: %s and its 99 successors are all taken", name)
}

// converge catches every consumer up with its live watermark until, with
// Switch, the rebuilt counters equal the live ones at the same watermarks and
// the pointer is switched.
func (b *build) converge(ctx context.Context) error {
	for {
		if err := b.catchUpAll(ctx); err != nil {
			return err
		}
		if !b.cfg.Switch {
			return nil
		}
		switched, err := b.trySwitch(ctx)
		if err != nil || switched {
			return err
		}
	}
}

// catchUpAll catches every consumer up with its live watermark.
func (b *build) catchUpAll(ctx context.Context) error {
	for _, cr := range b.runs {
		target, err := b.store.Watermark(ctx, b.live, cr.name)
		if err != nil {
			return err
		}
		n, err := b.catchUp(ctx, b.bulk, cr, target, b.prog)
		b.res.Events += n
		if err != nil {
			return err
		}
	}
	return nil
}

// trySwitch compares the rebuilt counters with the live ones and switches when
// they are equal (or Force is set). switched false without an error: the live
// aggregate moved on meanwhile, catch up again.
func (b *build) trySwitch(ctx context.Context) (switched bool, err error) {
	diffs, equal, err := b.compare(ctx)
	if err != nil || !equal {
		return false, err
	}
	b.res.Differences = diffs
	if len(diffs) > 0 && !b.cfg.Force {
		b.prog.done()
		b.keepBuilt = true
		return false, fmt.Errorf("the counters rebuilt in namespace %s differ from the live ones at the same watermark (%s); not switching (use --force to switch anyway, or --switch=false)", b.res.To, strings.Join(first(diffs, 5), "; "))
	}
	err = b.store.Switch(ctx, b.live, b.res.To, b.names)
	if errors.Is(err, projection.ErrNotCaughtUp) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	b.res.Switched, b.res.switchedAt = true, time.Now()
	return true, nil
}

// finish records the watermarks and the build time.
func (b *build) finish(ctx context.Context, start time.Time) error {
	for _, cr := range b.runs {
		b.res.Watermarks[cr.name] = cr.applied
	}
	if err := b.rc.HSet(ctx, b.store.Keys(b.res.To).Meta(), projection.MetaBuiltAt, time.Now().UnixMilli()).Err(); err != nil {
		return fmt.Errorf("mark built: %w", err)
	}
	b.res.Elapsed = time.Since(start)
	return nil
}

// dropOld removes, after a switch, the old namespace of res's shard once
// readers in flight are done with it (DropAfter after the switch), unless Keep.
func (r *Rebuilder) dropOld(ctx context.Context, rc redis.UniversalClient, res *Result) error {
	if !res.Switched || r.cfg.Keep {
		return nil
	}
	wait := time.Until(res.switchedAt.Add(r.cfg.DropAfter))
	log := r.log
	if res.Shards > 1 {
		log = log.With("shard", fmt.Sprintf("%d/%d", res.Shard, res.Shards))
	}
	log.Info("switched; removing the old namespace shortly", "old", res.From, "after", wait.Round(time.Millisecond))
	if !retry.Sleep(ctx, wait) {
		return ctx.Err()
	}
	if err := projection.NewShardStore(rc, r.cfg.Base, res.Shard, res.Shards).Drop(ctx, res.From); err != nil {
		return err
	}
	res.Dropped = true
	return nil
}

// dropUnfinished removes the rebuilt namespace after a failure: nobody reads it,
// and its sorted sets may be half written. A namespace built in full that only
// differs is kept.
func (b *build) dropUnfinished(ctx context.Context, err error) {
	if err == nil || b.res.To == "" || b.res.Switched || b.keepBuilt {
		return
	}
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer dcancel()
	if derr := b.store.Drop(dctx, b.res.To); derr != nil {
		b.log.Warn("could not remove the unfinished namespace", "namespace", b.res.To, "err", derr)
	} else {
		b.log.Info("removed the unfinished namespace", "namespace", b.res.To)
	}
}
