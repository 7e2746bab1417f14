// Package rebuild rebuilds wikiflow's projection from the JetStream log: it
// replays every live consumer's share of the retained log into a fresh
// namespace, counted with the live aggregate's Delta and written with pipelined
// commands (one checkpoint per catch-up, not a script per batch), catches up
// with the live watermarks, verifies the counters against the live ones at an equal
// watermark, and switches readers to it atomically.
//
// A sharded projection is rebuilt shard by shard (Config.Shard): shard k with
// the same steps, from the stream's shard mirror with the filters of shard k's
// live consumers, into a fresh namespace of shard k, verified against shard k's
// live counters and switched with shard k's pointer (see shards.go).
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Config configures a rebuild of the projection from the log.
type Config struct {
	// NATS is how to reach NATS (default nats://127.0.0.1:4222).
	NATS brokers.NATS
	// Redis is how to reach Redis (default redis://127.0.0.1:6379/0).
	Redis brokers.Redis
	// Stream is the JetStream stream (default wire.DefaultStream).
	Stream string
	// Base is the projection's base name (default wire.DefaultHash).
	Base string
	// Shard names what to rebuild: "" (the default) the unsharded projection,
	// "k/N" shard k of a projection of N shards, ShardAll every shard of the
	// projection one after the other. N must be the projection's recorded shard
	// count, and a sharded projection is rebuilt only when Shard names its shards.
	Shard string
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

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		NATS:      brokers.NATS{URL: brokers.DefaultNATS},
		Redis:     brokers.Redis{URL: brokers.DefaultRedis},
		Stream:    wire.DefaultStream,
		Base:      wire.DefaultHash,
		BatchSize: 20000,
		Switch:    true,
		DropAfter: 10 * time.Second,
		Timeout:   time.Hour,
	}
}

// Flags registers the rebuild flags.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	brokers.NATSFlags(f, &c.NATS)
	brokers.RedisFlags(f, &c.Redis)
	f.String(&c.Stream, "stream", "WIKIFLOW_STREAM", d.Stream, "JetStream stream to rebuild from")
	f.String(&c.Base, "hash", "WIKIFLOW_HASH", d.Base, "base name of the projection: the Redis hash of per-domain counts old clients read")
	f.String(&c.Shard, "shard", "WIKIFLOW_REBUILD_SHARD", d.Shard, "of a sharded projection: k/N rebuilds shard k of N (as 'aggregate --shard k/N' counts it), all rebuilds every shard in turn")
	f.Int(&c.BatchSize, "batch", "", d.BatchSize, "events counted together before they are applied")
	f.Bool(&c.Switch, "switch", "", d.Switch, "switch readers to the rebuilt counters once they match the live ones")
	f.Bool(&c.Force, "force", "", false, "switch even when the rebuilt counters differ from the live ones")
	f.Bool(&c.Keep, "keep", "", false, "keep the old namespace after the switch")
	f.Duration(&c.DropAfter, "drop-after", "", d.DropAfter, "remove the old namespace this long after the switch (readers in flight finish with it)")
	f.Duration(&c.Timeout, "timeout", "", d.Timeout, "give up after this long")
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		errs = append(errs, fmt.Errorf("batch: %d is outside 1..100000", c.BatchSize))
	}
	if err := wire.ValidStreamName(c.Stream); err != nil {
		errs = append(errs, fmt.Errorf("stream: %w", err))
	}
	if c.Base == "" {
		errs = append(errs, errors.New("base must not be empty"))
	}
	if c.Shard != "" && c.Shard != ShardAll {
		if _, _, err := projection.ParseShard(c.Shard); err != nil {
			errs = append(errs, fmt.Errorf("%w (or %s)", err, ShardAll))
		}
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
	// readAheadMessages is how many messages the replay keeps requested ahead of
	// the one being counted, and readAheadBytes bounds one request's bytes (it
	// must exceed the largest message). A bytes-only limit (PullMaxBytes) would
	// make the client allocate a buffer channel of a million message pointers,
	// which the garbage collector scans at every cycle.
	readAheadMessages = 2048
	readAheadBytes    = 4 << 20
	// idleRead is how long the replay waits for a message before it checks that
	// the log still has some for it.
	idleRead = 2 * time.Second
)

// Result describes a finished rebuild (of one shard).
type Result struct {
	// Shard and Shards say which shard of how many was rebuilt (0 of 1: an
	// unsharded projection).
	Shard, Shards int
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
	// switchedAt is when the pointer was switched (zero unless Switched).
	switchedAt time.Time
}

// Rebuilder rebuilds the projection.
type Rebuilder struct {
	cfg      Config
	log      *slog.Logger
	progress io.Writer
}

// New returns a Rebuilder. progress receives a progress line (nil for none).
func New(cfg Config, log *slog.Logger, progress io.Writer) *Rebuilder {
	return &Rebuilder{cfg: cfg, log: log.With("component", "rebuild"), progress: progress}
}

// Run connects to NATS and Redis (a Redis Cluster when Config.Redis names one)
// and rebuilds what Config.Shard names (see RunShards).
func (r *Rebuilder) Run(ctx context.Context) ([]Result, error) {
	nc, err := r.cfg.NATS.Connect("rebuild")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rc, err := r.cfg.Redis.Universal()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return r.RunShards(ctx, nc, rc)
}

// RunWith rebuilds over existing connections the unsharded projection, or the
// one shard Config.Shard names (ShardAll is RunShards'): replay every live
// consumer's share of the retained log into a fresh namespace, counted as the
// live aggregate counts, catch up with the live watermarks, verify the counters
// against the live ones at an equal watermark, and switch the pointer atomically.
func (r *Rebuilder) RunWith(ctx context.Context, nc *nats.Conn, rc redis.UniversalClient) (Result, error) {
	if r.cfg.Shard == ShardAll {
		return Result{}, errors.New("rebuild: shard all rebuilds every shard: use RunShards")
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	shards, n, err := r.resolve(ctx, rc)
	if err != nil {
		return Result{}, err
	}
	res, err := r.rebuild(ctx, nc, rc, shards[0], n)
	if err != nil {
		return res, err
	}
	return res, r.dropOld(ctx, rc, &res)
}

// rebuild rebuilds shard shard of shards (0 of 1: the unsharded projection),
// up to the switch.
func (r *Rebuilder) rebuild(ctx context.Context, nc *nats.Conn, rc redis.UniversalClient, shard, shards int) (res Result, err error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	res = Result{Shard: shard, Shards: shards, Watermarks: map[string]uint64{}}
	b := &build{Rebuilder: r, log: r.log, rc: rc, store: projection.NewShardStore(rc, r.cfg.Base, shard, shards), res: &res}
	label, stream := "rebuild", r.cfg.Stream
	if shards > 1 {
		label = fmt.Sprintf("rebuild shard %d/%d", shard, shards)
		b.log = r.log.With("shard", fmt.Sprintf("%d/%d", shard, shards))
		stream = wire.MirrorName(r.cfg.Stream, shards)
	}
	defer func() { b.dropUnfinished(ctx, err) }()
	st, state, err := brokers.OpenStream(ctx, nc, stream)
	if err != nil {
		return res, err
	}
	horizon, err := b.readLive(ctx)
	if err != nil {
		return res, err
	}
	closeRuns, err := b.openRuns(ctx, st, horizon)
	defer closeRuns()
	if err != nil {
		return res, err
	}
	if err := b.claimTarget(ctx, state); err != nil {
		return res, err
	}
	b.prog = &progress{w: r.progress, label: label, start: time.Now(), total: state.LastSeq}
	if err := b.converge(ctx); err != nil {
		return res, err
	}
	b.prog.done()
	return res, b.finish(ctx, start)
}
