package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// RebuildConfig configures a rebuild of the projection from the log.
type RebuildConfig struct {
	// NATS is how to reach NATS (default nats://127.0.0.1:4222).
	NATS brokers.NATS
	// Redis is how to reach Redis (default redis://127.0.0.1:6379/0).
	Redis brokers.Redis
	// Stream is the JetStream stream (default wire.DefaultStream).
	Stream string
	// Base is the projection's base name (default wire.DefaultHash).
	Base string
	// BatchSize is how many events are counted together before they are applied
	// (default 20000).
	BatchSize int
	// Switch makes the rebuilt namespace current once it matches the live one at an
	// equal watermark (default true); without it the namespace is only built.
	Switch bool
	// Force switches even when the rebuilt counts differ from the live ones (for
	// instance because retention dropped old events, or the live projection drifted).
	Force bool
	// Keep keeps the old namespace after the switch instead of removing it.
	Keep bool
	// DropAfter is how long the old namespace stays after the switch before it is
	// removed, so that requests that resolved the pointer just before the switch
	// finish reading it (default 10s, above the API's request timeout).
	DropAfter time.Duration
	// Timeout bounds the whole rebuild (default 1h).
	Timeout time.Duration
}

// DefaultRebuildConfig returns the defaults.
func DefaultRebuildConfig() RebuildConfig {
	return RebuildConfig{
		NATS:      brokers.NATS{URL: "nats://127.0.0.1:4222"},
		Redis:     brokers.Redis{URL: "redis://127.0.0.1:6379/0"},
		Stream:    wire.DefaultStream,
		Base:      wire.DefaultHash,
		BatchSize: 20000,
		Switch:    true,
		DropAfter: 10 * time.Second,
		Timeout:   time.Hour,
	}
}

// RebuildFlags registers the rebuild flags.
func RebuildFlags(f *cli.Flags, c *RebuildConfig) {
	d := DefaultRebuildConfig()
	brokers.NATSFlags(f, &c.NATS)
	brokers.RedisFlags(f, &c.Redis)
	f.String(&c.Stream, "stream", "WIKIFLOW_STREAM", d.Stream, "JetStream stream to rebuild from")
	f.String(&c.Base, "hash", "WIKIFLOW_HASH", d.Base, "base name of the projection: the Redis hash of per-domain counts old clients read")
	f.Int(&c.BatchSize, "batch", "", d.BatchSize, "events counted together before they are applied")
	f.Bool(&c.Switch, "switch", "", d.Switch, "switch readers to the rebuilt counters once they match the live ones")
	f.Bool(&c.Force, "force", "", false, "switch even when the rebuilt counters differ from the live ones")
	f.Bool(&c.Keep, "keep", "", false, "keep the old namespace after the switch")
	f.Duration(&c.DropAfter, "drop-after", "", d.DropAfter, "remove the old namespace this long after the switch (readers in flight finish with it)")
	f.Duration(&c.Timeout, "timeout", "", d.Timeout, "give up after this long")
}

// Validate reports every problem with c.
func (c RebuildConfig) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		errs = append(errs, fmt.Errorf("batch: %d is outside 1..100000", c.BatchSize))
	}
	if c.Stream == "" || c.Base == "" {
		errs = append(errs, errors.New("stream and base must not be empty"))
	}
	if c.Force && !c.Switch {
		errs = append(errs, errors.New("force only makes sense with switch"))
	}
	if c.DropAfter < 0 {
		errs = append(errs, errors.New("drop-after must not be negative"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout must be positive"))
	}
	return errors.Join(errs...)
}

// Replay tuning.
const (
	// readAheadBytes is how many bytes of messages the replay keeps requested
	// ahead of the one being counted.
	readAheadBytes = 4 << 20
	// idleRead is how long the replay waits for a message before it checks that
	// the log still has some for it.
	idleRead = 2 * time.Second
	// applyQueue is how many counted and encoded batches may wait for Redis.
	applyQueue = 1
	// detailPerCall bounds the sorted-set members and sketch entries one apply
	// call carries, so that no call holds Redis for long (about 20 ms each).
	detailPerCall = 10_000
)

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	// From is the namespace that was current; To the rebuilt one.
	From, To string
	// Events is how many log messages were applied.
	Events int64
	// Watermarks are the consumers' last applied sequences in the rebuilt namespace.
	Watermarks map[string]uint64
	// Partial is set when retention had dropped events before the rebuild started;
	// PartialFrom is then the log time of the oldest event it counted.
	Partial     bool
	PartialFrom time.Time
	// Differences lists the counters that differed from the live ones at the same
	// watermark (empty when they matched).
	Differences []string
	// Switched reports whether readers now use To; Dropped whether From was removed.
	Switched, Dropped bool
	// Elapsed is the wall time the rebuild took up to the switch (the removal of
	// the old namespace afterwards is not counted).
	Elapsed time.Duration
}

// Rebuilder rebuilds the projection.
type Rebuilder struct {
	cfg      RebuildConfig
	log      *slog.Logger
	progress io.Writer
}

// NewRebuilder returns a Rebuilder. progress receives a progress line (nil for none).
func NewRebuilder(cfg RebuildConfig, log *slog.Logger, progress io.Writer) *Rebuilder {
	return &Rebuilder{cfg: cfg, log: log.With("component", "rebuild"), progress: progress}
}

// Run connects to NATS and Redis and rebuilds.
func (r *Rebuilder) Run(ctx context.Context) (RebuildResult, error) {
	nc, err := r.cfg.NATS.Connect("rebuild")
	if err != nil {
		return RebuildResult{}, err
	}
	defer nc.Close()
	rc, err := r.cfg.Redis.Client()
	if err != nil {
		return RebuildResult{}, err
	}
	defer rc.Close()
	return r.RunWith(ctx, nc, rc)
}

// consumerRun is the replay of one live consumer's share of the log.
type consumerRun struct {
	name    string
	cons    jetstream.Consumer
	it      jetstream.MessagesContext
	applied uint64
	next    jetstream.Msg     // read beyond the current target, applied in a later round
	counts  *projection.Delta // the counters of the batch being read
	detail  *projection.Delta // its sorted sets and sketches
}

// RunWith rebuilds over existing connections: replay every live consumer's share
// of the retained log into a fresh namespace with the live aggregate's apply code,
// catch up with the live watermarks, verify the counters against the live ones at
// an equal watermark, and switch the pointer atomically.
func (r *Rebuilder) RunWith(ctx context.Context, nc *nats.Conn, rc *redis.Client) (res RebuildResult, err error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	res = RebuildResult{Watermarks: map[string]uint64{}}
	store := projection.NewStore(rc, r.cfg.Base)
	keepBuilt := false // a namespace built in full is kept for inspection when it differs
	defer func() {
		if err == nil || res.To == "" || res.Switched || keepBuilt {
			return
		}
		// A failed rebuild leaves nothing behind: nobody reads the namespace, and
		// its sorted sets may be half written.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer dcancel()
		if derr := store.Drop(dctx, res.To); derr != nil {
			r.log.Warn("could not remove the unfinished namespace", "namespace", res.To, "err", derr)
		} else {
			r.log.Info("removed the unfinished namespace", "namespace", res.To)
		}
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(ctx, r.cfg.Stream)
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", r.cfg.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("stream %s info: %w", r.cfg.Stream, err)
	}
	live, err := store.Current(ctx)
	if err != nil {
		return res, err
	}
	res.From = live
	wms, err := rc.HGetAll(ctx, store.Keys(live).Watermarks()).Result()
	if err != nil {
		return res, fmt.Errorf("read live watermarks: %w", err)
	}
	if len(wms) == 0 {
		return res, fmt.Errorf("the live projection %q has no watermark yet: no aggregate has applied anything to rebuild against", live)
	}
	// Buckets the live projection has let expire by its as_of are not rebuilt.
	liveMeta, err := store.Meta(ctx, live)
	if err != nil {
		return res, err
	}
	horizon := liveMeta.AsOf
	var runs []*consumerRun
	names := make([]string, 0, len(wms))
	for name := range wms {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ci, err := st.Consumer(ctx, name)
		if err != nil {
			return res, fmt.Errorf("live consumer %s (named in the projection's watermarks): %w", name, err)
		}
		cfg := ci.CachedInfo().Config
		filters := cfg.FilterSubjects
		if cfg.FilterSubject != "" {
			filters = []string{cfg.FilterSubject}
		}
		if len(filters) == 0 {
			filters = []string{wire.SubjectAll}
		}
		oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
		if err != nil {
			return res, fmt.Errorf("replay consumer for %s: %w", name, err)
		}
		defer removeConsumer(st, oc)
		it, err := oc.Messages(jetstream.PullMaxBytes(readAheadBytes))
		if err != nil {
			return res, fmt.Errorf("replay consumer for %s: %w", name, err)
		}
		defer it.Stop()
		runs = append(runs, &consumerRun{name: name, cons: oc, it: it,
			counts: projection.NewPartialDelta(projection.Counts, horizon),
			detail: projection.NewPartialDelta(projection.Detail, horizon)})
	}
	to, err := claim(ctx, rc, store, "r"+time.Now().UTC().Format("20060102t150405"))
	if err != nil {
		return res, err
	}
	res.To = to
	if info.State.FirstSeq > 1 {
		res.Partial = true
		res.PartialFrom = info.State.FirstTime.UTC()
		if err := rc.HSet(ctx, store.Keys(res.To).Meta(), projection.MetaPartialFrom, res.PartialFrom.UnixMilli()).Err(); err != nil {
			return res, fmt.Errorf("mark partial: %w", err)
		}
		r.log.Warn("retention has dropped the oldest events: the rebuild is partial", "counts_from", res.PartialFrom.Format(time.RFC3339), "first_seq", info.State.FirstSeq)
	}
	r.log.Info("rebuilding", "from", live, "into", res.To, "consumers", names, "log_seq", fmt.Sprintf("%d..%d", info.State.FirstSeq, info.State.LastSeq))

	prog := &progress{w: r.progress, start: time.Now(), total: info.State.LastSeq}
	for {
		// Catch every consumer up with its live watermark.
		for _, cr := range runs {
			target, err := store.Watermark(ctx, live, cr.name)
			if err != nil {
				return res, err
			}
			n, err := r.catchUp(ctx, store, res.To, cr, target, prog)
			res.Events += n
			if err != nil {
				return res, err
			}
		}
		if !r.cfg.Switch {
			break
		}
		diffs, equal, err := r.compare(ctx, rc, store, live, res.To, runs)
		if err != nil {
			return res, err
		}
		if !equal {
			continue // the live aggregate moved on meanwhile: catch up again
		}
		res.Differences = diffs
		if len(diffs) > 0 && !r.cfg.Force {
			prog.done()
			keepBuilt = true
			return res, fmt.Errorf("the counters rebuilt in namespace %s differ from the live ones at the same watermark (%s); not switching (use --force to switch anyway, or --switch=false)", res.To, strings.Join(first(diffs, 5), "; "))
		}
		err = store.Switch(ctx, live, res.To, names)
		if errors.Is(err, projection.ErrNotCaughtUp) {
			continue
		}
		if err != nil {
			return res, err
		}
		res.Switched = true
		break
	}
	prog.done()
	for _, cr := range runs {
		res.Watermarks[cr.name] = cr.applied
	}
	if err := rc.HSet(ctx, store.Keys(res.To).Meta(), projection.MetaBuiltAt, time.Now().UnixMilli()).Err(); err != nil {
		return res, fmt.Errorf("mark built: %w", err)
	}
	res.Elapsed = time.Since(start)
	if res.Switched && !r.cfg.Keep {
		r.log.Info("switched; removing the old namespace shortly", "old", live, "after", r.cfg.DropAfter)
		if !retry.Sleep(ctx, r.cfg.DropAfter) {
			return res, ctx.Err()
		}
		if err := store.Drop(ctx, live); err != nil {
			return res, err
		}
		res.Dropped = true
	}
	return res, nil
}

// claim reserves a fresh namespace named after name (name, then name-2, name-3,
// ...): the first whose meta hash did not exist, created with its start time.
func claim(ctx context.Context, rc *redis.Client, store *projection.Store, name string) (string, error) {
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

// catchUp applies cr's share of the log up to and including target.
//
// The reader counts each batch, encodes it and hands it to an applier goroutine,
// so that reading, counting and encoding overlap with Redis applying the previous
// batches. A batch's counters are applied in one call that moves the rebuilt
// namespace's watermark; its sorted sets and sketches follow in calls of at most
// detailPerCall members, their members in each set's own order. Before catchUp
// returns every batch is applied, hence before any comparison or switch.
func (r *Rebuilder) catchUp(ctx context.Context, store *projection.Store, ns string, cr *consumerRun, target uint64, prog *progress) (int64, error) {
	type job struct {
		preps []*projection.Prepared
		upto  uint64
		n     int
	}
	jobs := make(chan job, applyQueue)
	failed := make(chan error, 1)
	finished := make(chan struct{})
	var applied int64
	upto := cr.applied
	go func() {
		defer close(finished)
		for j := range jobs {
			for _, p := range j.preps {
				res, err := store.RunPrepared(ctx, p)
				if err == nil && res.Status != projection.Applied {
					err = fmt.Errorf("apply to %s as %s: %s (watermark %d): another rebuild is writing to it?", ns, cr.name, res.Status, res.Watermark)
				}
				if err != nil {
					failed <- err
					for range jobs {
					}
					return
				}
			}
			applied += int64(j.n)
			upto = j.upto
			prog.add(j.n, j.upto)
		}
	}()
	// stop waits for the applier and returns its error, if any.
	stop := func() error {
		if jobs != nil {
			close(jobs)
			jobs = nil
		}
		<-finished
		select {
		case err := <-failed:
			failed <- err
			return err
		default:
			return nil
		}
	}
	// fail stops the applier before reporting what it applied (which only the
	// applier writes until then).
	fail := func(err error) (int64, error) {
		_ = stop()
		return applied, err
	}

	sent := cr.applied
	var last uint64
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		counts, err := store.PrepareStandby(ns, cr.name, sent, last, cr.counts)
		if err != nil {
			return err
		}
		detail, err := store.PrepareDetail(ns, cr.name, last, cr.detail, detailPerCall)
		if err != nil {
			return err
		}
		cr.counts.Reset()
		cr.detail.Reset()
		select {
		case jobs <- job{preps: []*projection.Prepared{counts, detail}, upto: last, n: pending}:
		case err := <-failed:
			failed <- err
			return err
		}
		sent, pending = last, 0
		return nil
	}
	for max(sent, last) < target {
		m := cr.next
		cr.next = nil
		if m == nil {
			var err error
			m, err = cr.it.Next(jetstream.NextMaxWait(idleRead))
			if errors.Is(err, nats.ErrTimeout) {
				if err := ctx.Err(); err != nil {
					return fail(err)
				}
				if err := checkPending(ctx, cr, max(sent, last), target); err != nil {
					return fail(err)
				}
				continue
			}
			if err != nil {
				return fail(fmt.Errorf("read log: %w", err))
			}
		}
		md, err := m.Metadata()
		if err != nil {
			return fail(fmt.Errorf("message metadata: %w", err))
		}
		if md.Sequence.Stream > target {
			cr.next = m
			break
		}
		if ev, err := event.Parse(m.Data()); err == nil {
			cr.counts.Add(&ev)
			cr.detail.Add(&ev)
		}
		last = md.Sequence.Stream
		pending++
		if pending >= r.cfg.BatchSize {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := stop(); err != nil {
		return applied, err
	}
	cr.applied = upto
	if cr.applied < target {
		return applied, fmt.Errorf("consumer %s: the log skipped from %d past the live watermark %d (was its filter changed?)", cr.name, cr.applied, target)
	}
	return applied, nil
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

// compare reads the live counters and watermarks in one transaction and compares
// them with the rebuilt namespace. equal is false when the live watermarks moved
// past the rebuilt ones (compare again after catching up).
func (r *Rebuilder) compare(ctx context.Context, rc *redis.Client, store *projection.Store, live, ns string, runs []*consumerRun) (diffs []string, equal bool, err error) {
	kinds := []projection.Kind{projection.KindCube, projection.KindNamespace, projection.KindEditor, projection.KindWho, projection.KindMinor, projection.KindBytes}
	kl, kn := store.Keys(live), store.Keys(ns)
	var wmCmd *redis.MapStringStringCmd
	liveCmds := make([]*redis.MapStringStringCmd, len(kinds))
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		wmCmd = p.HGetAll(ctx, kl.Watermarks())
		for i, k := range kinds {
			liveCmds[i] = p.HGetAll(ctx, kl.All(k))
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("snapshot live counters: %w", err)
	}
	for _, cr := range runs {
		if wmCmd.Val()[cr.name] != strconv.FormatUint(cr.applied, 10) {
			return nil, false, nil
		}
	}
	for i, k := range kinds {
		mine, err := rc.HGetAll(ctx, kn.All(k)).Result()
		if err != nil {
			return nil, false, fmt.Errorf("read rebuilt counters: %w", err)
		}
		diffs = append(diffs, diffMaps(string(k), liveCmds[i].Val(), mine)...)
	}
	return diffs, true, nil
}

func diffMaps(kind string, live, rebuilt map[string]string) []string {
	var out []string
	for f, v := range live {
		if rebuilt[f] != v && !(v == "0" && rebuilt[f] == "") {
			out = append(out, fmt.Sprintf("%s %s: live %s, rebuilt %s", kind, f, v, orZero(rebuilt[f])))
		}
	}
	for f, v := range rebuilt {
		if _, ok := live[f]; !ok && v != "0" {
			out = append(out, fmt.Sprintf("%s %s: live 0, rebuilt %s", kind, f, v))
		}
	}
	sort.Strings(out)
	return out
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// progress draws a one-line progress bar with rate and ETA.
type progress struct {
	w      io.Writer
	start  time.Time
	total  uint64
	events int64
	seq    uint64
	last   time.Time
}

func (p *progress) add(n int, seq uint64) {
	p.events += int64(n)
	p.seq = seq
	if p.w == nil || time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw("\r")
}

func (p *progress) draw(end string) {
	el := time.Since(p.start).Seconds()
	rate := float64(p.events) / max(el, 1e-9)
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.seq)/float64(p.total), 1)
	}
	const width = 30
	filled := int(frac * width)
	eta := "--"
	if rate > 0 && p.total > p.seq {
		eta = (time.Duration(float64(p.total-p.seq) / rate * float64(time.Second))).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "rebuild [%s%s] %3.0f%%  %d events  %.0f events/s  ETA %s%s",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, p.events, rate, eta, end)
}

func (p *progress) done() {
	if p.w != nil {
		p.draw("\n")
	}
}
